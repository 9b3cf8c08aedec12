// Package config is postback.yaml compiled: the Config and its partners,
// with every template parsed and every condition compiled, and what a
// partner decides about an event: whether it routes there (Routes,
// Partner.NotRouted), its macro values (Partner.Values), and the request
// it renders (Partner.Render). A Config is immutable; Live holds the one
// in force and a reload swaps it.
//
// Loading is all or nothing: every value is checked, and every problem in
// the file is reported with its position, as
//
//	postback.yaml:14:37: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)
//
// `${env:NAME}` in any value is replaced from the environment at load; an
// unset variable is a load error. A process that only enqueues loads the
// file with LoadIntake, which reads the partners' routing and not how to
// reach them, so their secrets need not be set.
package config
