//go:build race

package objcrypt

const raceEnabled = true
