// Package pyenvtest builds real Python distributions and serves them the
// way pip finds them, for tests of runagent's dependency builder: no PyPI,
// everything built by Debian's /usr/bin/python3 and served on loopback.
//
//	whl := pyenvtest.BuildWheel(t, "", pyenvtest.Dist{
//		Name: "attrsx", Version: "1.0",
//		Modules: map[string]string{"attrsx/__init__.py": "def f(): return 1\n"},
//	})
//	ix := pyenvtest.NewIndex(t, whl)             // ix.URL() for --index-url
//	dir := pyenvtest.Wheelhouse(t, whl)          // for --find-links
//	pin := "attrsx==1.0 --hash=sha256:" + pyenvtest.SHA256(whl)
//
// BuildWheel and BuildSdist run setuptools (66.1.1 on Debian 12) through
// /usr/bin/python3 and cache the result per test binary: a pure wheel takes
// about 0.3 s, one with a C extension 0.6 s, a cached one under 1 ms. A
// Dist's SetupPy is written into the sdist's setup.py but never run here.
// BuildBackend adds the setuptools and wheel that an isolated PEP 517
// build fetches. scripts/deps.sh installs what all this needs.
//
// # What Debian's pip (23.0.1, Python 3.11) does, as the tests show it
//
// Offline install into a directory, hermetic and non-interactive:
//
//	PIP_CONFIG_FILE=/dev/null /usr/bin/python3 -m pip --isolated --no-input \
//	    --disable-pip-version-check install --no-cache-dir --target DIR \
//	    --index-url URL [--find-links DIR] [--no-index] [--require-hashes] -r requirements.txt
//
// Configuration: PIP_CONFIG_FILE=/dev/null makes pip skip every config
// file, /etc/pip.conf included; --isolated ignores PIP_* variables and the
// user's config but still reads /etc/pip.conf. This machine has both an
// /etc/pip.conf and PIP_FIND_LINKS set, so a builder needs both measures. pip's build-isolation subprocess is not given --isolated,
// so its environment must be clean as well.
//
// PEP 668: /usr/lib/python3.11/EXTERNALLY-MANAGED makes pip refuse plain
// and --user installs ("error: externally-managed-environment", even with
// --dry-run). --target is exempt (and so, by the same rule in pip's
// install.py, are --prefix and --root), so --break-system-packages is not
// needed. So is a venv:
// "python3 -m venv --without-pip DIR" takes about 40 ms (with pip, through
// ensurepip, 3 s), and "python3 -m pip --python DIR/bin/python install ..."
// installs into it with Debian's pip.
//
// Sdists: without a pyproject.toml pip runs the sdist's setup.py with the
// setuptools pip itself runs with, offline and without isolation. With one
// (Dist.Pyproject) pip first installs setuptools>=40.8.0 and wheel into an
// isolated build environment from the same index or find-links; offline
// that fails unless pip has --no-build-isolation or the index serves
// BuildBackend's files. Either way setup.py is arbitrary code that runs at
// install time; --only-binary :all: refuses sdists without running it.
//
// Hashes: --require-hashes with "name==1.0 --hash=sha256:HEX" checks each
// download ("THESE PACKAGES DO NOT MATCH THE HASHES" otherwise) and needs
// every requirement, dependencies included, pinned with == and hashed. The
// build-isolation subprocess is given no hashes (pip's build_env.py).
//
// Private indexes: credentials in the URL (http://user:pass@host/simple/)
// work and pip prints them as "****", -v included; but pip hands the index
// URL, credentials and all, to its build-isolation subprocess on the
// command line (build_env.py). A netrc file ($NETRC or ~/.netrc) with a
// credential-free URL works too and keeps them out of argv. Without
// credentials, or with wrong ones, pip says only "Could not find a version
// that satisfies the requirement X (from versions: none)"; the 401 shows
// only at -vv ("Could not fetch URL ...: 401 Client Error"). Index.Refused
// lets a test tell a refusal from a missing project.
//
// Speed on this 2-core machine: pip installs a wheel from an Index in
// about 0.35 s, builds and installs an sdist in 0.8 s (one with a C
// extension, compiled by gcc, in 0.85 s), an isolated PEP 517 sdist in
// 1.8 s.
//
// Names: a pure wheel is attrsx-1.0-py3-none-any.whl; one with a C
// extension carries the interpreter's tags,
// speedups-1.5-cp311-cp311-linux_x86_64.whl (not manylinux: it is meant
// for this machine). Wheel
// names use underscores (App_Dep-1.0-...) while setuptools 66 names the
// sdist with the project's spelling (Attrs_X-1.0.tar.gz), so the Index
// reads each file's name and Requires-Python from its own metadata and
// lists it under the PEP 503 normalized name (app-dep).
package pyenvtest
