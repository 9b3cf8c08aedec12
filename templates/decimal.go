package templates

// Decimal strings are handled as digits, never as floats: revenue "0.1"
// must become 10 cents exactly, and amounts of any size must survive.

// splitDecimal splits an optionally signed decimal ("-12.5", "+3", ".5",
// "7.") into its sign, integer digits and fraction digits. It accepts no
// spaces, exponents or thousands separators, and needs at least one digit.
func splitDecimal(s string) (neg bool, ip, fp string, ok bool) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	ip = s[:i]
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		fp, i = s[i+1:j], j
	}
	if i != len(s) || ip == "" && fp == "" {
		return false, "", "", false
	}
	return neg, ip, fp, true
}

// appendCents appends the decimal s times 100, as an integer: "1.99" ->
// "199", "2" -> "200", "0.5" -> "50". Digits past the second decimal place
// round half away from zero ("1.995" -> "200", "-1.995" -> "-200").
func appendCents(dst []byte, s string) ([]byte, bool) {
	neg, ip, fp, ok := splitDecimal(s)
	if !ok {
		return dst, false
	}
	start := len(dst)
	// A sign slot and a guard '0' that absorbs a carry out of the top digit.
	dst = append(dst, '-', '0')
	dst = append(dst, ip...)
	for i := range 2 {
		if i < len(fp) {
			dst = append(dst, fp[i])
		} else {
			dst = append(dst, '0')
		}
	}
	if len(fp) > 2 && fp[2] >= '5' {
		for i := len(dst) - 1; ; i-- {
			if dst[i] != '9' {
				dst[i]++
				break
			}
			dst[i] = '0'
		}
	}
	first := start + 1
	for first < len(dst)-1 && dst[first] == '0' {
		first++
	}
	if neg && !(first == len(dst)-1 && dst[first] == '0') {
		first--
		dst[first] = '-'
	}
	n := copy(dst[start:], dst[first:])
	return dst[:start+n], true
}

// appendJSONNumber appends the decimal s as a JSON number: no '+', no
// leading zeros, "0" before a bare fraction, no dangling '.'.
func appendJSONNumber(dst []byte, s string) ([]byte, bool) {
	neg, ip, fp, ok := splitDecimal(s)
	if !ok {
		return dst, false
	}
	if neg {
		dst = append(dst, '-')
	}
	for len(ip) > 1 && ip[0] == '0' {
		ip = ip[1:]
	}
	if ip == "" {
		ip = "0"
	}
	dst = append(dst, ip...)
	if fp != "" {
		dst = append(dst, '.')
		dst = append(dst, fp...)
	}
	return dst, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
