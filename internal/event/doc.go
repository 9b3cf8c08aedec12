// Package event is the conversion an app backend reports: the Event, its
// two JSON decoders (a reflection-free path for the usual shape and
// encoding/json for the rest, which agree on every input), its
// validation, and the batch forms (SplitJSON, SplitNDJSON).
//
// Decoding is strict so that no two readers of the same bytes disagree:
// unknown fields, keys in another case, repeated keys, invalid UTF-8 and
// lone surrogate escapes are refused, naming the field.
package event
