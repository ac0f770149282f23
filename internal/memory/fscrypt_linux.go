//go:build linux

package memory

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// keySize is the size of a store's fscrypt master key: the most fscrypt
// takes, which v2 policies derive every per-file key from (HKDF-SHA512).
const keySize = unix.FSCRYPT_MAX_KEY_SIZE

// newMasterKey returns a random master key.
func newMasterKey() []byte {
	k := make([]byte, keySize)
	rand.Read(k) // never fails (crypto/rand panics if the kernel cannot give randomness)
	return k
}

// addKey adds key to the file system mounted at mnt and returns the
// identifier the kernel derived from it (the v2 policy names it).
func addKey(mnt string, key []byte) ([unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte, error) {
	var id [unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte
	if len(key) != keySize {
		return id, fmt.Errorf("memory: master key is %d bytes, want %d", len(key), keySize)
	}
	f, err := os.Open(mnt)
	if err != nil {
		return id, fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	var arg addKeyArg
	arg.Key_spec.Type = unix.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
	arg.Raw_size = keySize
	copy(arg.raw[:], key)
	defer clear(arg.raw[:])
	if err := ioctlAddKey(int(f.Fd()), &arg); err != nil {
		return id, fmt.Errorf("memory: add the store's key to the file system at %s (FS_IOC_ADD_ENCRYPTION_KEY): %w", mnt, err)
	}
	copy(id[:], arg.Key_spec.U[:])
	return id, nil
}

// removeKey removes the key id from the file system mounted at mnt: the
// kernel wipes its copy of the key and evicts the plaintext of every file
// not in use. A key that is not there is fine.
func removeKey(mnt string, id [unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte) error {
	f, err := os.Open(mnt)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	var arg unix.FscryptRemoveKeyArg
	arg.Key_spec.Type = unix.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
	copy(arg.Key_spec.U[:], id[:])
	err = ioctlRemoveKey(int(f.Fd()), &arg)
	if errors.Is(err, unix.ENOKEY) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memory: remove the store's key from the file system at %s: %w", mnt, err)
	}
	return nil
}

// wantPolicy is the policy of every encrypted store: v2, AES-256-XTS for
// contents and AES-256-CTS for names (fscrypt's recommended modes),
// names padded to 32 bytes so that their lengths tell less.
func wantPolicy(id [unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte) unix.FscryptPolicyV2 {
	return unix.FscryptPolicyV2{
		Version:                   unix.FSCRYPT_POLICY_V2,
		Contents_encryption_mode:  unix.FSCRYPT_MODE_AES_256_XTS,
		Filenames_encryption_mode: unix.FSCRYPT_MODE_AES_256_CTS,
		Flags:                     unix.FSCRYPT_POLICY_FLAGS_PAD_32,
		Master_key_identifier:     id,
	}
}

// ensurePolicy makes sure dir is encrypted with the key id: a directory
// without a policy gets it (the kernel refuses a non-empty one); one with
// another policy, or another key, is refused (fail closed: the agent
// would write plaintext, or under a key the store does not hold).
func ensurePolicy(dir string, id [unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	want := wantPolicy(id)
	arg := unix.FscryptGetPolicyExArg{Size: uint64(len(unix.FscryptGetPolicyExArg{}.Policy))}
	err = ioctlGetPolicy(int(f.Fd()), &arg)
	switch {
	case errors.Is(err, unix.ENODATA):
		if err := ioctlSetPolicy(int(f.Fd()), &want); err != nil {
			return fmt.Errorf("memory: encrypt %s (FS_IOC_SET_ENCRYPTION_POLICY): %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("memory: read the encryption policy of %s: %w", dir, err)
	}
	got, ok := policyOf(&arg)
	if !ok || got != want {
		return fmt.Errorf("memory: %s is not encrypted with the store's key and policy; refusing to use it", dir)
	}
	return nil
}

// hasPolicy reports whether dir has an encryption policy.
func hasPolicy(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	arg := unix.FscryptGetPolicyExArg{Size: uint64(len(unix.FscryptGetPolicyExArg{}.Policy))}
	err = ioctlGetPolicy(int(f.Fd()), &arg)
	if errors.Is(err, unix.ENODATA) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("memory: read the encryption policy of %s: %w", dir, err)
	}
	return true, nil
}
