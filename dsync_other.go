//go:build !(linux || darwin || netbsd || openbsd || solaris || aix)

package voldfs

// oDSYNC is the host's O_DSYNC open flag: none on this platform.
const oDSYNC = 0
