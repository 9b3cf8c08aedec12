// Package templates is postback's macro language: the partner URL, header
// and body templates, parsed once and rendered for every
// delivery.
//
// A template is parsed for one [Context] (URL, JSON body, form body,
// header, text) into an immutable [Template]; rendering takes the
// delivery's [Values] and holds no other state, so one Template serves all
// goroutines:
//
//	t, err := templates.Parse("https://pb.acme.example/c?click_id={click_id}&sum={revenue|default:0}", templates.ContextURL)
//	var v templates.Values
//	v.Set(templates.FieldClickID, "abc")
//	u, err := t.Render(&v) // https://pb.acme.example/c?click_id=abc&sum=0
//
// # Syntax
//
// A macro is {name} or {name|filter|filter:arg}. A '{' opens a macro only
// when a letter follows it; any other '{' or '}' is literal, so a JSON body
// like {"click":"{click_id}"} needs no escaping. "{{" is a literal '{'
// (write {{click_id} to get the text {click_id}). A filter's argument is
// literal text up to the next '|' or '}', so it cannot contain either, nor
// a '{': a macro in an argument, like {revenue|default:{click_id}}, fails
// the parse rather than render as text.
//
// # Names
//
// event_id, event, timestamp, app_id, click_id, partner, campaign_id,
// campaign, adgroup_id, adgroup, creative_id, creative, site_id,
// sub1…sub5, idfa, idfv, gaid, android_id, ip, user_agent, os, os_version,
// country, customer_user_id, email, revenue, currency, transaction_id,
// status (approved when the event has none), click_time, install_time
// (time filters apply to both), delivery_id,
// attempt, and params.KEY for the event's free params (KEY: letters,
// digits, '_', '.', '-'). An unknown name fails the parse with the closest
// known name suggested.
//
// Every value is a string and "" means absent. An absent value renders
// empty unless a default filter gives one. An all-zero IDFA or GAID is
// absent. {timestamp} is the event time in UTC, RFC 3339, to the second
// (2026-11-25T18:31:21Z).
//
// # Filters
//
// Filters apply left to right. Except default, map's fallback and json, a
// filter leaves an absent value absent, so {email|sha256} of no email is
// empty, not the hash of "".
//
//	default:X    X when the value is absent.
//	lower upper  Unicode case mapping; invalid UTF-8 bytes are kept.
//	trim         strip leading and trailing white space.
//	sha256 sha1 md5
//	             lowercase hex digest. On {email} the address is trimmed
//	             and lowercased first, as ad networks match hashed emails.
//	unix unixms  seconds / milliseconds since 1970.
//	rfc3339      RFC 3339 in UTC.
//	             The three time filters read the event time directly when
//	             they come first on {timestamp} (keeping milliseconds);
//	             anywhere else they parse the value as RFC 3339 and fail
//	             the render when it is not one.
//	cents        a decimal amount times 100: "1.99" -> "199", "2" -> "200",
//	             "0.5" -> "50", "-1.5" -> "-150". Exact decimal arithmetic
//	             on the digits, never floating point; digits past the
//	             second decimal place round half away from zero ("1.995"
//	             -> "200", "1.994" -> "199"). Accepts an optional sign,
//	             digits and one '.', nothing else: "1,99" or "1e2" fail
//	             the render.
//	map:a=1,b=2  replace a value found in the list; other values pass
//	             unchanged. A "*" entry (map:a=1,*=0) replaces every other
//	             present value; absent stays absent (add default for it).
//	json         a whole JSON literal: absent -> null; revenue and attempt
//	             -> a JSON number when the value is a decimal ("1.50" ->
//	             1.50, "+007" -> 7); anything else -> a quoted string.
//	             Must be the last filter.
//	raw          loosen the URL query or form escaping (below). Must be
//	             last. Refused in a URL path.
//
// A render error (a failed time or cents filter, a header value with a line
// break, a URL path segment that would read as "." or "..") is a
// [*RenderError]: the request is not built; postback dead-letters the
// delivery with reason "render".
//
// # Escaping
//
// Where a macro stands decides how its value is written; no value can
// change the structure around it.
//
// ContextURL: the template must be an absolute URL with a literal scheme
// and host. Macros in the scheme, userinfo, host or port are refused, as a
// value there could send the request elsewhere; macros in the fragment are
// refused as the fragment never reaches the server. In the query, keys and
// values alike are escaped like [net/url.QueryEscape] (space becomes '+').
// Literal text may not contain spaces or control characters.
//
// In the path a value is escaped like [net/url.PathEscape] ('/' becomes
// %2F), so it stays inside its segment, and no value can make a segment
// that reads as "." or "..", which servers resolve as a step in the path
// rather than a name. The segment is what the template has between two
// '/': its macros' values and the literal text around them, as in
// /a/{x}/, /a/{x}{y}/ or /a/.{x}/. When it is "." or ".." once
// percent-decoded, the render fails; no escape could do instead, as %2E
// means '.' to the URL standards and to servers. Percent-decoded here
// means decoded again while that still changes anything (%252E is '.' to a
// server that decodes twice), and a dot segment also counts between the
// slashes or backslashes that a %2F or %5C decodes to, or before a ';'
// ("..%2Fx", "..;x"). A segment written in the template with no macro in
// it is kept as written, dots and all.
//
// ContextJSON: inside a JSON string a value is written as string content,
// escaped as encoding/json does (invalid UTF-8 becomes U+FFFD). Outside a
// string only {x|json} may stand, since bare text there could add keys.
// The template must be valid JSON once macros are filled in. raw is
// refused.
//
// ContextForm: every macro is escaped like [net/url.QueryEscape].
//
// ContextHeader: values are written as they are, but a value with a
// control character (CR, LF, NUL or any other byte below 0x20 but tab, or
// DEL) fails the render: a header is never sent with a line break in it.
//
// ContextText: no escaping, for previews and tests.
//
// raw keeps a value as it is where that is safe and escapes only what could
// change the structure. In a URL query or form body raw writes letters,
// digits, - . _ ~ ! $ ' ( ) * , : @ / + and well-formed %XX sequences as
// they are, and percent-encodes everything else, among it & = ? # ; % (not
// starting %XX), space, quotes and non-ASCII bytes; so an already encoded
// value ("a%20b") is not encoded twice. raw is refused in a URL path,
// where a %2E or %2F it kept could change the path at the partner. In
// headers and text raw changes nothing.
//
// # Errors
//
// Parse returns the first problem as an [*Error] whose Offset is the byte
// offset in the source, for file:line:col reports:
//
//	unknown macro {clik_id} (did you mean {click_id}?)
//	unknown filter "lowr" in {event|lowr} (did you mean "lower"?)
//	filter "map" needs an argument like map:a=1,b=2
//	unclosed macro {click_id
//	macro {click_id} not allowed in the URL host
//	filter "raw" is not available in a URL path, in {click_id|raw} (a %2E or %2F it kept could change the path)
//	a macro cannot be used inside a filter argument; filter arguments are literal
package templates
