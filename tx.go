package voldfs

import "sync"

// tx is the record of one commit attempt: the blocks it wrote and the
// blocks of the old version its result no longer references. The commit
// loop (cas.go) frees written if the attempt's CAS loses or the attempt
// fails, and freed once the CAS wins. The directory trie and the file block
// tree record into it as they build, so a change touching both (or two
// directory edits in one commit, as a rename does) leaves one record.
type tx struct {
	mu      sync.Mutex // a directory merge records from parallel goroutines
	written []blockRef // freed if this attempt's CAS loses
	freed   []blockRef // freed once this attempt's CAS wins
	refs    *refEdit   // count changes of shared blocks (reflinkcount.go)
}

// add records blocks written and blocks freed.
func (t *tx) add(written, freed []blockRef) {
	t.mu.Lock()
	t.written = append(t.written, written...)
	t.freed = append(t.freed, freed...)
	t.mu.Unlock()
}

// wrote records a block written.
func (t *tx) wrote(ref blockRef) { t.add([]blockRef{ref}, nil) }

// free records a block the new version no longer references.
func (t *tx) free(ref blockRef) { t.add(nil, []blockRef{ref}) }
