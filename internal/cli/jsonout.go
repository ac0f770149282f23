package cli

import (
	"encoding/json"
	"io"
)

// jsonFlagUsage is the help of every listing command's --json.
const jsonFlagUsage = "print one JSON object per line (for scripts) instead of a table"

// printJSONLines writes each item as one line of JSON: what a listing
// prints with --json.
func printJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}
