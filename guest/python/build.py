"""runagent's environment builder: runs inside a build sandbox.

The host hands the job over in the environment: RUNAGENT_BUILD (a JSON
object: requirements, constraints, whether they are hash-pinned, the
package indexes without credentials, links pages) and, for indexes that
need them, RUNAGENT_NETRC (credentials in netrc form, written to a file
pip reads and taken out of the environment first, so they are on no
command line). It mounts the directory to fill at RUNAGENT_OUT_DIR. This
script writes the requirements to the sandbox's scratch disk and runs
pip, ignoring every pip configuration file and variable of the host image,
to install them into RUNAGENT_OUT_DIR/site-packages. pip's output is the
build log; the exit status is pip's. Standard library only.
"""

import json
import os
import subprocess
import sys


def _write(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    # The control channel (fd 3) carries nothing for a build.
    try:
        os.close(3)
    except OSError:
        pass
    job = json.loads(os.environ.pop("RUNAGENT_BUILD"))
    netrc = os.environ.pop("RUNAGENT_NETRC", "")
    out = os.environ["RUNAGENT_OUT_DIR"]
    work = os.environ.get("TMPDIR") or "/tmp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf of the image applies
    if netrc:
        path = os.path.join(work, ".netrc")
        _write(path, netrc)
        env["NETRC"] = path
    req = os.path.join(work, "requirements.txt")
    _write(req, "\n".join(job["requirements"]) + "\n", 0o644)
    cmd = [
        sys.executable, "-m", "pip", "--isolated", "--no-input", "--disable-pip-version-check",
        "install", "--no-cache-dir", "--progress-bar", "off",
        "--target", os.path.join(out, "site-packages"),
        "-r", req,
    ]
    if job.get("constraints"):
        cons = os.path.join(work, "constraints.txt")
        _write(cons, "\n".join(job["constraints"]) + "\n", 0o644)
        cmd += ["-c", cons]
    if job.get("require_hashes"):
        cmd.append("--require-hashes")
    indexes = job.get("indexes") or []
    if indexes:
        cmd += ["--index-url", indexes[0]]
        for ix in indexes[1:]:
            cmd += ["--extra-index-url", ix]
    else:
        cmd.append("--no-index")
    for link in job.get("find_links") or []:
        cmd += ["--find-links", link]
    print("runagent build: installing %d requirement(s) with pip" % len(job["requirements"]), flush=True)
    sys.exit(subprocess.call(cmd, env=env))


if __name__ == "__main__":
    main()
