// Package pyenv gives agents the Python packages they declare. An agent's
// dependency set — its requirements.txt (or [project.dependencies] of its
// pyproject.toml) and the wheels it vendors in wheels/ — is read and
// checked by Read; Key names the environment of that set for one
// interpreter and platform; a Builder builds it once, with pip, inside a
// build sandbox of its own (the code of an sdist's build runs there, not
// on the host), and keeps it read-only under the data directory, shared
// by every agent and version with the same set.
//
// Where packages come from is the server's to say: the package indexes
// (PEP 503) and --find-links folders it is given, and the project's own
// wheels, which a small server on loopback offers the build as a page of
// links. The build sandbox reaches those, through the egress proxy, and
// nothing else. An index's credentials reach only pip, in its
// environment; build logs have them removed.
package pyenv
