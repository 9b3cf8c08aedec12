// Package presets holds the built-in partner presets: one YAML file per
// tracker or network under defs/, each with the vendor's documented
// parameter names, our macros and filters, the response rules its vendor
// needs, the settings only the user knows, and a contract (the vendor's
// documented request and answers) that its test renders against.
//
// `postback partners presets` lists them and `postback partners add`
// appends one, filled in, to a config file (see Append); docs/partners.md
// is generated from them (Catalogue).
package presets
