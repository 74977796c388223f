package store

// Lookup exposes the lean Secret Service read to the external tests.
var Lookup = lookup
