// Package scaffold writes a small, working example agent into a directory:
// the project that runagent init creates. The example uses only Python's
// standard library and has one plain entrypoint (generate) and one
// streaming entrypoint (generate_stream). Its files are templates
// embedded from template/.
package scaffold
