//go:build linux

package memory

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fscrypt ioctls take structures the unix package declares but has no
// wrappers for; FS_IOC_ADD_ENCRYPTION_KEY's ends in the raw key, a
// flexible array member. EXT4_IOC_RESIZE_FS has no wrapper either. Every
// use of unsafe in the package is here.

// addKeyArg is struct fscrypt_add_key_arg followed by its raw key.
type addKeyArg struct {
	unix.FscryptAddKeyArg
	raw [unix.FSCRYPT_MAX_KEY_SIZE]byte
}

// ioctlAddKey adds arg's key to the file system of fd.
func ioctlAddKey(fd int, arg *addKeyArg) error {
	return ioctlPtr(fd, unix.FS_IOC_ADD_ENCRYPTION_KEY, unsafe.Pointer(arg))
}

// ioctlRemoveKey removes arg's key from the file system of fd.
func ioctlRemoveKey(fd int, arg *unix.FscryptRemoveKeyArg) error {
	return ioctlPtr(fd, unix.FS_IOC_REMOVE_ENCRYPTION_KEY, unsafe.Pointer(arg))
}

// ioctlSetPolicy sets policy on the empty directory fd.
func ioctlSetPolicy(fd int, policy *unix.FscryptPolicyV2) error {
	return ioctlPtr(fd, unix.FS_IOC_SET_ENCRYPTION_POLICY, unsafe.Pointer(policy))
}

// ioctlGetPolicy reads the policy of fd (ENODATA: none).
func ioctlGetPolicy(fd int, arg *unix.FscryptGetPolicyExArg) error {
	return ioctlPtr(fd, unix.FS_IOC_GET_ENCRYPTION_POLICY_EX, unsafe.Pointer(arg))
}

// ext4IOCResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow the
// mounted ext4 file system of fd to the given number of blocks.
const ext4IOCResizeFS = 0x40086610

// ioctlResize grows the ext4 file system of fd to blocks blocks.
func ioctlResize(fd int, blocks *uint64) error {
	return ioctlPtr(fd, ext4IOCResizeFS, unsafe.Pointer(blocks))
}

// policyOf decodes a v2 policy read by ioctlGetPolicy.
func policyOf(arg *unix.FscryptGetPolicyExArg) (unix.FscryptPolicyV2, bool) {
	if arg.Size != uint64(unsafe.Sizeof(unix.FscryptPolicyV2{})) || arg.Policy[0] != unix.FSCRYPT_POLICY_V2 {
		return unix.FscryptPolicyV2{}, false
	}
	return *(*unix.FscryptPolicyV2)(unsafe.Pointer(&arg.Policy[0])), true
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return errno
		}
	}
}
