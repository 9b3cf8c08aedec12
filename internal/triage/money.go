package triage

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
)

// Sums adds up amounts per currency exactly: decimals are added as
// integers of their smallest digit, never as floats. The zero value is
// empty and ready.
type Sums struct {
	by map[string]*sum
}

type sum struct {
	units *big.Int // the amount times 10^scale
	scale int
}

// Add adds amount, a decimal such as "1.99" or "-0.5", in currency ("" for
// an amount with no currency). An amount that is not a decimal is
// refused.
func (s *Sums) Add(amount, currency string) error {
	if amount == "" {
		return nil
	}
	units, scale, err := parseDecimal(amount)
	if err != nil {
		return err
	}
	if s.by == nil {
		s.by = map[string]*sum{}
	}
	cur := s.by[currency]
	if cur == nil {
		s.by[currency] = &sum{units: units, scale: scale}
		return nil
	}
	switch {
	case scale > cur.scale:
		cur.units.Mul(cur.units, pow10(scale-cur.scale))
		cur.scale = scale
	case scale < cur.scale:
		units.Mul(units, pow10(cur.scale-scale))
	}
	cur.units.Add(cur.units, units)
	return nil
}

// Map returns the sums by currency, each as a decimal with as many
// fraction digits as the most precise amount added ("12.30").
func (s *Sums) Map() map[string]string {
	out := make(map[string]string, len(s.by))
	for c, v := range s.by {
		out[c] = format(v)
	}
	return out
}

// String writes the sums as "12.30 EUR, 4.00 USD", currencies in order.
func (s *Sums) String() string {
	m := s.Map()
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, strings.TrimSpace(m[c]+" "+c))
	}
	return strings.Join(parts, ", ")
}

func parseDecimal(s string) (*big.Int, int, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || strings.Trim(whole+frac, "0123456789") != "" {
		return nil, 0, fmt.Errorf("revenue %q is not a decimal", s)
	}
	v, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return nil, 0, fmt.Errorf("revenue %q is not a decimal", s)
	}
	if neg {
		v.Neg(v)
	}
	return v, len(frac), nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func format(v *sum) string {
	neg := v.units.Sign() < 0
	digits := new(big.Int).Abs(v.units).String()
	if v.scale > 0 {
		if len(digits) <= v.scale {
			digits = strings.Repeat("0", v.scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-v.scale] + "." + digits[len(digits)-v.scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}
