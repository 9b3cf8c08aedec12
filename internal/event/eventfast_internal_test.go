package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// stdDecode is the encoding/json path of DecodeEvent, the reference the
// fast path must agree with.
func stdDecode(data []byte) (eventJSON, bool) {
	var raw eventJSON
	if checkStrict(data) != nil {
		return raw, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(&raw) != nil {
		return raw, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return raw, false
	}
	return raw, true
}

// takenSeeds are the usual shape of an event, which the fast path decodes.
var takenSeeds = []string{
	`{"id":"e1","name":"purchase"}`,
	" \t\r\n{ \"id\" : \"e1\" , \"name\" : \"install\" } \n",
	`{}`,
	`{"id":"e1","name":"purchase","timestamp":"2026-11-25T18:31:21.5+01:00","app_id":"a","click_id":"c",` +
		`"attribution":{"partner":"p","campaign_id":"1","campaign":"w","adgroup_id":"g","adgroup":"G","creative_id":"r","creative":"R","site_id":"s","sub1":"1","sub2":"2","sub3":"3","sub4":"4","sub5":"5"},` +
		`"device":{"idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC","idfv":"x","gaid":"y","android_id":"z","ip":"::1","user_agent":"Mozilla/5.0 (é)","os":"ios","os_version":"18","country":"US"},` +
		`"user":{"customer_user_id":"u","email":"a@example.com"},"revenue":{"amount":"  1.99 ","currency":"EUR"},` +
		`"consent":{"granted":false},"params":{"a":"x","b":7,"c":-1.5e3,"d":true,"e":false,"f":0}}`,
	`{"revenue":{"amount":12.50}}`,
	`{"revenue":{"amount":""}}`,
	`{"params":{}}`,
	`{"id":"n","name":"install","device":{"idfa":" 6d92078a-8246-4ba4-ae5b-76104861e7dc ","gaid":"38400000-8CF0-11BD-B23E-10B96E40000C","ip":"999.1.1.1","country":"usa"},"user":{"email":" A@Example.com "}}`,
	`{"device":{"idfv":"x","country":" fr "},"user":{"email":"Ⱥ@example.com"}}`,
	`{"id":"t1","name":"purchase","transaction_id":" ord-1 ","status":" Rejected ","attribution":{"click_time":"2026-11-25T18:31:21+02:00","install_time":"yesterday"}}`,
	`{"id":"t2","name":"purchase","status":"declined"}`,
	"{\"id\":\"e\uFFFD\",\"params\":{\"a\":\"1\",\"A\":\"2\"}}", // U+FFFD sent as itself; keys differing in case
}

// declinedSeeds are what the fast path hands to encoding/json.
var declinedSeeds = []string{
	`{"ID":"e1"}`,                               // another case
	`{"id":"e1","id":"e2"}`,                     // a repeated key
	`{"device":{"ip":"a"},"device":{"os":"b"}}`, // a repeated object
	`{"params":{"a":"1","a":"2"}}`,              // a repeated param
	`{"id":"e\u0031"}`,                          // an escape
	`{"i\u0064":"e1","n\u0061me":"x"}`,          // escapes in keys
	`{"params":{"\u0061":"1","a":"2"}}`,         // a param repeated through an escape
	`{"id":"a\ud83d\ude00","name":"x"}`,         // a surrogate pair
	`{"id":"a\ud800","name":"x"}`,               // a lone surrogate (refused)
	`{"id":"a\ufffd","name":"x"}`,               // U+FFFD escaped
	`{"id":null}`,                               // null
	`{"consent":{"granted":null}}`,              // null
	`{"params":{"a":null}}`,                     // null param (dropped)
	`{"params":{"a":1e999}}`,                    // a number out of range
	`{"params":{"a":01}}`,                       // not JSON
	`{"revenue":{"amount":"1.2.3"}}`,            // not a decimal
	"{\"id\":\"\xff\"}",                         // invalid UTF-8 (refused)
	"{\"params\":{\"\xc3(\":1}}",                // invalid UTF-8 in a key (refused)
	`{"id":"e1"} {}`,                            // trailing data
	`{"id":"e1",}`,                              // trailing comma
	`{"unknown":1}`,                             // unknown field
	`[]`, `"x"`, ``, `{`, `{"id"`, `{"id":`, `{"id":"e1"`,
}

// FuzzDecodeEvent holds the two paths of DecodeEvent against each other:
// whatever the fast path decodes, encoding/json decodes the same; with or
// without the fast path, DecodeEvent gives the same event or the same
// error. And no event holds a U+FFFD its body did not send: invalid UTF-8
// and lone surrogates are refused, never replaced.
//
// Intake normalises the decoded event (Normalize), so the two paths agree
// on the normalised event too, as they agree on its input; checkNormalize
// holds Normalize to what it promises on every event either path decodes.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range append(takenSeeds, declinedSeeds...) {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast eventJSON
		if decodeFast(data, &fast) {
			std, ok := stdDecode(data)
			if !ok {
				t.Fatalf("fast path accepted what encoding/json refuses: %q", data)
			}
			// RawMessage: encoding/json copies the bytes; compare the text.
			if string(fast.Timestamp) != string(std.Timestamp) {
				t.Fatalf("timestamp %q, encoding/json %q", fast.Timestamp, std.Timestamp)
			}
			fast.Timestamp, std.Timestamp = nil, nil
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("%q:\nfast %#v\nstd  %#v", data, fast, std)
			}
		}

		if json.Valid(data) {
			checkAgainstTokens(t, data)
		}

		ev, err := decodeEvent(data, now, true)
		stdEv, stdErr := decodeEvent(data, now, false)
		if !reflect.DeepEqual(ev, stdEv) || !reflect.DeepEqual(err, stdErr) {
			t.Fatalf("%q:\nDecodeEvent       %#v, %v\nencoding/json path %#v, %v", data, ev, err, stdEv, stdErr)
		}
		if ev == nil {
			return
		}
		n := checkNormalize(t, ev)
		if !sendsReplacement(data) {
			for _, ev := range []*Event{ev, n} {
				b, err := json.Marshal(ev) // writes invalid UTF-8 as \ufffd
				if err != nil {
					t.Fatal(err)
				}
				if sendsReplacement(b) {
					t.Fatalf("%q decoded to %s, with a U+FFFD it does not send", data, b)
				}
			}
		}
	})
}

// checkNormalize normalises a copy of ev in each mode and returns the
// default mode's result, after checking that: the default mode never
// refuses; strict refuses exactly when the default mode drops a field,
// and otherwise gives the same event; every identifier with a form is
// then empty or in it; and normalising again changes nothing.
func checkNormalize(t *testing.T, ev *Event) *Event {
	t.Helper()
	n, strict := *ev, *ev
	warnings, err := n.Normalize(false)
	if err != nil {
		t.Fatalf("%#v: refused in the default mode: %v", ev, err)
	}
	_, serr := strict.Normalize(true)
	switch {
	case (serr != nil) != (len(warnings) > 0):
		t.Fatalf("%#v: strict %v, default mode's warnings %v", ev, serr, warnings)
	case serr != nil && !reflect.DeepEqual(&strict, ev):
		t.Fatalf("%#v: strict refused it, and changed it to %#v", ev, strict)
	case serr == nil && !reflect.DeepEqual(strict, n):
		t.Fatalf("%#v: strict %#v, default mode %#v", ev, strict, n)
	}
	for _, f := range []struct {
		v    string
		form *form
	}{
		{n.Device.IDFA, &uuidForm}, {n.Device.IDFV, &uuidForm}, {n.Device.GAID, &uuidForm},
		{n.Device.IP, &ipForm}, {n.Device.Country, &countryForm}, {n.User.Email, &emailForm},
	} {
		if f.v != "" && !f.form.ok(f.v) {
			t.Fatalf("%#v: normalised to %q, not %s", ev, f.v, f.form.name)
		}
	}
	again := n
	if w, err := again.Normalize(false); err != nil || len(w) > 0 || !reflect.DeepEqual(again, n) {
		t.Fatalf("%#v: normalised twice: %#v, %v, %v", ev, again, w, err)
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("%#v: Validate refuses it once normalised: %v", ev, err)
	}
	return &n
}

// checkAgainstTokens holds checkStrict against what encoding/json's own
// tokens of data, valid JSON, show: checkStrict refuses data exactly when
// they show a key it refuses or a U+FFFD that data does not send.
func checkAgainstTokens(t *testing.T, data []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var badKey, replaced bool
	var walk func(sh *shape)
	walk = func(sh *shape) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		switch tok {
		case json.Delim('['):
			for dec.More() {
				walk(nil)
			}
			dec.Token()
		case json.Delim('{'):
			seen := make(map[string]bool)
			for dec.More() {
				tok, _ := dec.Token()
				key := tok.(string)
				replaced = replaced || strings.ContainsRune(key, utf8.RuneError)
				var next *shape
				if sh != nil {
					badKey = badKey || seen[key]
					seen[key] = true
					if !sh.free {
						k := slices.Index(sh.keys, key)
						if k < 0 {
							badKey = true
						} else {
							next = sh.nested[k]
						}
					}
				}
				walk(next)
			}
			dec.Token()
		default:
			if s, ok := tok.(string); ok {
				replaced = replaced || strings.ContainsRune(s, utf8.RuneError)
			}
		}
	}
	walk(eventShape)
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
		return // checkStrict leaves what is not an object to encoding/json
	}
	fe := checkStrict(data)
	switch {
	case fe != nil && !badKey && !replaced:
		t.Fatalf("%q: checkStrict refused it (%v), tokens show nothing wrong", data, fe)
	case fe == nil && (badKey || replaced && !sendsReplacement(data)):
		t.Fatalf("%q: checkStrict took it, tokens show a bad key (%v) or a U+FFFD not sent (%v)", data, badKey, replaced)
	}
}

// sendsReplacement reports whether JSON text b holds U+FFFD, as itself or
// escaped.
func sendsReplacement(b []byte) bool {
	return bytes.Contains(b, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`))
}

// TestDecodeFast_takesTheUsualShape makes sure the fast path is the one
// that runs for ordinary events (a fast path that refuses everything would
// pass the fuzz test), and gives way on the unusual ones.
func TestDecodeFast_takesTheUsualShape(t *testing.T) {
	for _, seeds := range []struct {
		want bool
		s    []string
	}{{true, takenSeeds}, {false, declinedSeeds}} {
		for _, s := range seeds.s {
			var raw eventJSON
			if got := decodeFast([]byte(s), &raw); got != seeds.want {
				t.Errorf("decodeFast(%q) = %v, want %v", s, got, seeds.want)
			}
		}
	}
}

// TestShapes checks the hand-written field checks against the regexps
// their comments give.
func TestShapes(t *testing.T) {
	checks := []struct {
		re *regexp.Regexp
		fn func(string) bool
	}{
		{regexp.MustCompile(`^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$`), isDecimal},
		{regexp.MustCompile(`^[a-z0-9_]{1,64}$`), isName},
		{regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`), isParamKey},
		{regexp.MustCompile(`^[A-Z]{3}$`), func(s string) bool { return isUpper(s, 3) }},
		{regexp.MustCompile(`^[A-Z]{2}$`), func(s string) bool { return isUpper(s, 2) }},
		{regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`), isUUID},
	}
	inputs := []string{
		"", "0", "-0", "00", "01", "1", "-", "-1", "1.", ".5", "1.99", "-12.5", "1.2.3", "1e3", " 1",
		"123456789012345678", "1234567890123456789", "1.123456789012", "1.1234567890123", "0.10",
		"purchase", "Purchase", "a_b", "a-b", "a.b", "level", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"USD", "usd", "US", "U1", "USDX", "ÉU",
		"6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc",
		"6D92078A-8246-4BA4-AE5B-76104861E7DG", "6D92078A_8246-4BA4-AE5B-76104861E7DC",
		"6D92078A-8246-4BA4-AE5B-76104861E7D", "6D92078A-8246-4BA4-AE5B-76104861E7DC0",
		"6D92078A-8246-4BA4-AE5B-76104861E7D\x00", "6D92078A-8246-4BA4-AE5B-76104861E7D`", "6D92078A-8246-4BA4-AE5B-76104861E7D@",
	}
	for _, c := range checks {
		for _, s := range inputs {
			if got, want := c.fn(s), c.re.MatchString(s); got != want {
				t.Errorf("%s on %q: %v, want %v", c.re, s, got, want)
			}
		}
	}
	// Every byte in every position of a UUID.
	uuid := []byte("6D92078A-8246-4BA4-AE5B-76104861E7DC")
	for i := range uuid {
		for b := range 256 {
			s := string(uuid[:i]) + string(rune(b)) + string(uuid[i+1:])
			if got, want := isUUID(s), checks[5].re.MatchString(s); got != want {
				t.Fatalf("isUUID(%q) = %v, want %v", s, got, want)
			}
		}
	}
}
