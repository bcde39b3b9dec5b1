package voldfs

import "time"

// FsckProgress is how far a Fsck run has got, as FsckOptions.Progress
// sees it.
type FsckProgress struct {
	// Phase is "walk" (the tree from the root), "orphans" (listed inodes
	// the walk did not reach), "garbage" (listed blocks no inode
	// references) or "done" (the last call, with the final figures).
	Phase string
	// Inodes counts the inodes checked so far: those the walk reached,
	// then the listed ones it had not.
	Inodes int
	// Blocks counts the distinct blocks found referenced so far.
	Blocks int
	// Garbage counts the unreferenced blocks older than the grace period
	// found so far; Deleted, in the last call of a run with GC, those whose
	// delete requests finished (a failed delete leaves a block for the next
	// GC).
	Garbage, Deleted int
	// Elapsed is the time since Fsck began.
	Elapsed time.Duration
}

// fsckProgressEvery is how often at most Fsck calls its Progress callback
// (besides the last call).
const fsckProgressEvery = 250 * time.Millisecond

// fsckMeter calls a Fsck's Progress callback, at most every
// fsckProgressEvery and once at the end. Its zero value (no callback) costs
// a nil check a call.
type fsckMeter struct {
	fn          func(FsckProgress)
	start, last time.Time
	p           FsckProgress
}

func newFsckMeter(fn func(FsckProgress)) *fsckMeter {
	now := time.Now()
	return &fsckMeter{fn: fn, start: now, last: now}
}

// tick records progress and reports it if the last report is old enough.
func (m *fsckMeter) tick(phase string, inodes, blocks, garbage int) {
	if m.fn == nil {
		return
	}
	m.p.Phase, m.p.Inodes, m.p.Blocks, m.p.Garbage = phase, inodes, blocks, garbage
	if now := time.Now(); now.Sub(m.last) >= fsckProgressEvery {
		m.last = now
		m.p.Elapsed = now.Sub(m.start)
		m.fn(m.p)
	}
}

// done reports the final figures.
func (m *fsckMeter) done(r *FsckReport, inodes, deleted int) {
	if m.fn == nil {
		return
	}
	m.p = FsckProgress{Phase: "done", Inodes: inodes, Blocks: r.Blocks, Garbage: r.GarbageBlocks, Deleted: deleted, Elapsed: time.Since(m.start)}
	m.fn(m.p)
}
