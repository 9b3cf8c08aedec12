package event

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeFast decodes the usual shape of an event without reflection: keys
// spelled exactly as documented, each once, strings without escapes, no
// nulls. It fills raw exactly as encoding/json would and reports true, or
// reports false as soon as it meets anything else, and DecodeEvent then
// decodes with checkStrict and encoding/json, which also write every error
// message. So the fast path needs only to be right about what it accepts;
// it never has to explain a refusal. FuzzDecodeEvent checks it against
// the other path.
//
// Its strings share one copy of data, made once: one allocation for every
// field of the event.
func decodeFast(data []byte, raw *eventJSON) bool {
	p := fastScan{s: string(data)}
	ok := p.object(func(key string) bool {
		switch key {
		case "id":
			return p.setString(&raw.ID, 0)
		case "name":
			return p.setString(&raw.Name, 1)
		case "timestamp":
			if !p.once(2) {
				return false
			}
			start := p.i
			if _, ok := p.str(); !ok {
				return false
			}
			raw.Timestamp = data[start:p.i]
			return true
		case "app_id":
			return p.setString(&raw.AppID, 3)
		case "click_id":
			return p.setString(&raw.ClickID, 4)
		case "transaction_id":
			return p.setString(&raw.TransactionID, 11)
		case "status":
			return p.setString(&raw.Status, 12)
		case "attribution":
			return p.once(5) && p.attribution(&raw.Attribution)
		case "device":
			return p.once(6) && p.device(&raw.Device)
		case "user":
			return p.once(7) && p.user(&raw.User)
		case "revenue":
			return p.once(8) && p.revenue(&raw.Revenue)
		case "consent":
			return p.once(9) && p.consent(&raw.Consent)
		case "params":
			return p.once(10) && p.params(&raw.Params)
		}
		return false
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.s)
}

// fastScan reads JSON from s. seen holds the keys of the object being read
// (a bit per field), to refuse a repeated key.
type fastScan struct {
	s    string
	i    int
	seen uint32
}

func (p *fastScan) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// once marks field bit of the current object seen, and fails if it was.
func (p *fastScan) once(bit uint) bool {
	if p.seen&(1<<bit) != 0 {
		return false
	}
	p.seen |= 1 << bit
	return true
}

// object reads an object, calling value with each key once the scanner is
// at the key's value; value reads it. seen is per object.
func (p *fastScan) object(value func(key string) bool) bool {
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return false
	}
	p.i++
	outer := p.seen
	p.seen = 0
	defer func() { p.seen = outer }()
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		if !value(key) {
			return false
		}
		p.ws()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string that needs no unescaping: no backslash, no control
// character, valid UTF-8 (the other path refuses invalid UTF-8).
func (p *fastScan) str() (string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			v := p.s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			p.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// setString reads a string into *dst, field bit of its object.
func (p *fastScan) setString(dst *string, bit uint) bool {
	if !p.once(bit) {
		return false
	}
	v, ok := p.str()
	*dst = v
	return ok
}

// strings reads an object whose values are all strings, fields naming
// them in order.
func (p *fastScan) strings(fields []string, dst []*string) bool {
	return p.object(func(key string) bool {
		for i, f := range fields {
			if f == key {
				return p.setString(dst[i], uint(i))
			}
		}
		return false
	})
}

var attributionFields = []string{"partner", "campaign_id", "campaign", "adgroup_id", "adgroup", "creative_id", "creative", "site_id", "sub1", "sub2", "sub3", "sub4", "sub5", "click_time", "install_time"}

func (p *fastScan) attribution(a *Attribution) bool {
	return p.strings(attributionFields, []*string{&a.Partner, &a.CampaignID, &a.Campaign, &a.AdgroupID, &a.Adgroup, &a.CreativeID, &a.Creative, &a.SiteID, &a.Sub1, &a.Sub2, &a.Sub3, &a.Sub4, &a.Sub5, &a.ClickTime, &a.InstallTime})
}

var deviceFields = []string{"idfa", "idfv", "gaid", "android_id", "ip", "user_agent", "os", "os_version", "country"}

func (p *fastScan) device(d *Device) bool {
	return p.strings(deviceFields, []*string{&d.IDFA, &d.IDFV, &d.GAID, &d.AndroidID, &d.IP, &d.UserAgent, &d.OS, &d.OSVersion, &d.Country})
}

var userFields = []string{"customer_user_id", "email"}

func (p *fastScan) user(u *User) bool {
	return p.strings(userFields, []*string{&u.CustomerUserID, &u.Email})
}

// revenue reads amount as Decimal.UnmarshalJSON would (a string or a
// number), and currency.
func (p *fastScan) revenue(r *Revenue) bool {
	return p.object(func(key string) bool {
		switch key {
		case "amount":
			if !p.once(0) {
				return false
			}
			var s string
			if p.i < len(p.s) && p.s[p.i] == '"' {
				v, ok := p.str()
				if !ok {
					return false
				}
				s = strings.TrimSpace(v)
			} else {
				v, ok := p.number()
				if !ok {
					return false
				}
				s = v
			}
			if s != "" && !isDecimal(s) {
				return false
			}
			r.Amount = Decimal(s)
			return true
		case "currency":
			return p.setString(&r.Currency, 1)
		}
		return false
	})
}

func (p *fastScan) consent(c *Consent) bool {
	return p.object(func(key string) bool {
		if key != "granted" || !p.once(0) {
			return false
		}
		var v bool
		switch {
		case strings.HasPrefix(p.s[p.i:], "true"):
			v, p.i = true, p.i+4
		case strings.HasPrefix(p.s[p.i:], "false"):
			p.i += 5
		default:
			return false
		}
		c.Granted = &v
		return true
	})
}

// params reads the free-form object as paramsJSON.UnmarshalJSON would:
// strings as they are, numbers and booleans as their text. A repeated key
// sends the event to the other path, which refuses it.
func (p *fastScan) params(dst *paramsJSON) bool {
	out := make(paramsJSON)
	ok := p.object(func(key string) bool {
		if _, dup := out[key]; dup {
			return false
		}
		switch c := p.peek(); {
		case c == '"':
			v, ok := p.str()
			out[key] = v
			return ok
		case strings.HasPrefix(p.s[p.i:], "true"):
			out[key], p.i = "true", p.i+4
		case strings.HasPrefix(p.s[p.i:], "false"):
			out[key], p.i = "false", p.i+5
		default:
			v, ok := p.number()
			if !ok {
				return false
			}
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return false
			}
			out[key] = v
		}
		return true
	})
	*dst = out
	return ok
}

func (p *fastScan) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastScan) number() (string, bool) {
	start, j := p.i, p.i
	digits := func() bool {
		k := j
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	switch {
	case j < len(p.s) && p.s[j] == '0':
		j++
	case !digits():
		return "", false
	}
	if j < len(p.s) && p.s[j] == '.' {
		j++
		if !digits() {
			return "", false
		}
	}
	if j < len(p.s) && (p.s[j] == 'e' || p.s[j] == 'E') {
		j++
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		if !digits() {
			return "", false
		}
	}
	p.i = j
	return p.s[start:j], true
}
