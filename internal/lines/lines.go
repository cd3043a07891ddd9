// Package lines holds small helpers for line-oriented text (logs).
package lines

import "bytes"

// Last returns the last n lines of b, newline-terminated; n <= 0 gives none.
func Last(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 || n <= 0 {
		return nil
	}
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			return append(b, '\n')
		}
	}
	return append(b[i+1:], '\n')
}
