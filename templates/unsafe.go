package templates

import "unsafe"

// unsafeBytes views s as bytes without copying; callers only read them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// unsafeString views b as a string without copying; callers keep b
// unchanged while the string is in use (see scratch).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
