package api

import (
	"encoding/base64"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
)

// The lists of keys, blocks and persistent memory page on the server by
// cursor (keyset paging), as invocations do: ?limit= rows (1-100, default
// 100) from ?cursor=, the next_cursor of the page before. The store
// answers one row more than the page, which says whether a next page
// exists; nothing reads the whole list.

// defaultListPage is the page of the keys, blocks and memory lists
// without ?limit=; maxListPage the largest; eraseBatch the stores an
// agent's deletion reads at a time.
const (
	defaultListPage = 100
	maxListPage     = 100
	eraseBatch      = 100
)

var errOffset = fieldError("offset", "this list pages by cursor: send the next_cursor of the previous page as ?cursor=, not ?offset=")

// cursorParams reads ?limit= and ?cursor= of a list paged by cursor; a
// ?offset= is refused, so that a client written for offsets does not
// read the first page again and again.
func cursorParams(q url.Values) (limit int, cursor string, err error) {
	if q.Has("offset") {
		return 0, "", errOffset
	}
	if limit, err = intParam(q.Get("limit"), "limit", defaultListPage, 1, maxListPage); err != nil {
		return 0, "", err
	}
	return limit, q.Get("cursor"), nil
}

// pageOf completes the body of one page of a list paged by cursor:
// rows is what the store answered for limit+1, cut to the page; next is
// the cursor after a row, set when a next page exists.
func pageOf[T any](body map[string]any, rows []T, limit int, next func(T) string) []T {
	body["limit"] = limit
	if len(rows) > limit {
		rows = rows[:limit]
		body["next_cursor"] = next(rows[limit-1])
	}
	return rows
}

// A key cursor is an invocation cursor of the key's creation time and id
// (encodeCursor).

func encodeKeyCursor(k *core.APIKey) string {
	return encodeCursor(core.InvocationCursor{CreatedAt: k.CreatedAt, ID: k.ID})
}

func decodeKeyCursor(s string) (*core.KeyCursor, error) {
	c, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	return &core.KeyCursor{CreatedAt: c.CreatedAt, ID: c.ID}, nil
}

// A block cursor is a time cursor of the block's end and client.

func encodeBlockCursor(b Block) string { return encodeTimeCursor(b.Until, b.Client) }

// decodeBlockCursor reads a block cursor from a client; anything but a
// cursor encodeBlockCursor made is errCursor.
func decodeBlockCursor(s string) (*Block, error) {
	until, client, err := decodeTimeCursor(s, 512, validClient)
	if err != nil {
		return nil, err
	}
	return &Block{Client: client, Until: until}, nil
}

// A memory cursor is the base64url of the last user id of a page.

func encodeUserCursor(user string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(user))
}

// decodeUserCursor reads a memory cursor from a client: a user id such
// as a store may have (memory.Key.Validate), or errCursor.
func decodeUserCursor(s string) (string, error) {
	if len(s) > base64.RawURLEncoding.EncodedLen(memory.MaxUserID) {
		return "", errCursor
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) == 0 || !utf8.Valid(raw) || strings.ContainsFunc(string(raw), unicode.IsControl) {
		return "", errCursor
	}
	if encodeUserCursor(string(raw)) != s { // the decoder skips line breaks
		return "", errCursor
	}
	return string(raw), nil
}
