//go:build linux || darwin || netbsd || openbsd || solaris || aix

package voldfs

import "syscall"

// oDSYNC is the host's O_DSYNC open flag.
const oDSYNC = syscall.O_DSYNC
