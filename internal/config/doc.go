// Package config loads postback.yaml into a config.Config.
//
// Loading is all or nothing: every template is parsed, every condition
// compiled and every value checked, and every problem in the file is
// reported with its position, as
//
//	postback.yaml:14:37: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)
//
// `${env:NAME}` in any value is replaced from the environment at load; an
// unset variable is a load error. Go backends that enqueue with
// intake.Client load the same file with Load.
package config
