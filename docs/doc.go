// Package docs holds Arca's documentation and the tests that keep it true:
// install_test.go runs docs/install.md, the install guide, block by block
// on the real stack, so a command that stops working fails make test. The
// package has no code of its own.
package docs
