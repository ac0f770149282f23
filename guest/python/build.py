"""runagent's environment builder: runs inside a build sandbox.

The host hands the job over in the environment (RUNAGENT_BUILD, a JSON
object; the package indexes, credentials included, in PIP_INDEX_URL and
PIP_EXTRA_INDEX_URL, never on a command line) and mounts the directory to
fill at RUNAGENT_OUT_DIR. This script writes the requirements to the
sandbox's scratch disk and runs pip to install them into
RUNAGENT_OUT_DIR/site-packages. pip's output is the build log; the exit
status is pip's. Standard library only.
"""

import json
import os
import subprocess
import sys


def main():
    # The control channel (fd 3) carries nothing for a build.
    try:
        os.close(3)
    except OSError:
        pass
    job = json.loads(os.environ["RUNAGENT_BUILD"])
    out = os.environ["RUNAGENT_OUT_DIR"]
    work = os.environ.get("TMPDIR") or "/tmp"
    req = os.path.join(work, "requirements.txt")
    with open(req, "w", encoding="utf-8") as f:
        f.write("\n".join(job["requirements"]) + "\n")
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--no-cache-dir", "--disable-pip-version-check", "--no-input",
        "--progress-bar", "off",
        "--target", os.path.join(out, "site-packages"),
        "-r", req,
    ]
    if job.get("constraints"):
        cons = os.path.join(work, "constraints.txt")
        with open(cons, "w", encoding="utf-8") as f:
            f.write("\n".join(job["constraints"]) + "\n")
        cmd += ["-c", cons]
    if job.get("require_hashes"):
        cmd.append("--require-hashes")
    for link in job.get("find_links", []):
        cmd += ["--find-links", link]
    if not os.environ.get("PIP_INDEX_URL"):
        cmd.append("--no-index")
    print("runagent build: installing %d requirement(s) with pip" % len(job["requirements"]), flush=True)
    sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
