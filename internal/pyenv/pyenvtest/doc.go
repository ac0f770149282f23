// Package pyenvtest builds real Python distributions and serves them the
// way pip finds them, for tests of runagent's dependency builder.
package pyenvtest
