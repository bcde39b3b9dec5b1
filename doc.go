// Package voldfs is a POSIX-style copy-on-write filesystem stored in any
// key-value store that offers Get and compare-and-swap (package backend).
package voldfs
