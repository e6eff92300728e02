package config

import _ "embed"

//go:embed example.toml
var example string

// Example returns a commented configuration that sets every key, for `shoal config example`.
func Example() string { return example }
