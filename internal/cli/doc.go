// Package cli implements the runagent command line. Commands return
// errors instead of exiting, so tests can run them in-process.
package cli
