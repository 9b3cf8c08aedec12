// Command gendocs writes docs/partners.md from the preset definitions:
// go generate ./internal/presets/ (or make docs).
package main

import (
	"fmt"
	"os"

	"github.com/postbackhq/postback/internal/presets"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], presets.Catalogue(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
