package batches

import (
	"fmt"
	"sync"

	"github.com/pocketbase/pocketbase/core"
)

// BatchHook runs inside the transaction of a status change; an error rolls the whole
// change back (status, history, ops event), so a hook that must not block a release
// should record its own failure and return nil.
type BatchHook func(txApp core.App, batchID string) error

type hookEntry struct {
	id int
	fn BatchHook
}

var transitionHooks struct {
	sync.RWMutex
	next     int
	released []hookEntry
	recalled []hookEntry
	created  []createdEntry
}

// CreatedHook runs inside the transaction that creates a batch, with the units
// produced; an error rolls the creation back.
type CreatedHook func(txApp core.App, batchID string, units int) error

type createdEntry struct {
	id int
	fn CreatedHook
}

// OnCreated registers fn to run, in the transaction, whenever Create makes a batch
// (inventory records the production there). The returned function removes it.
func OnCreated(fn CreatedHook) (remove func()) {
	transitionHooks.Lock()
	defer transitionHooks.Unlock()
	transitionHooks.next++
	id := transitionHooks.next
	transitionHooks.created = append(transitionHooks.created, createdEntry{id: id, fn: fn})
	return func() {
		transitionHooks.Lock()
		defer transitionHooks.Unlock()
		list := transitionHooks.created
		for i, h := range list {
			if h.id == id {
				transitionHooks.created = append(list[:i:i], list[i+1:]...)
				return
			}
		}
	}
}

func runCreatedHooks(txApp core.App, batchID string, units int) error {
	transitionHooks.RLock()
	list := append([]createdEntry(nil), transitionHooks.created...)
	transitionHooks.RUnlock()
	for _, h := range list {
		if err := h.fn(txApp, batchID, units); err != nil {
			return fmt.Errorf("batch %s: created hook: %w", batchID, err)
		}
	}
	return nil
}

// OnReleased registers fn to run, in the transaction, whenever a batch becomes
// released (allocation binds waiting orders there). Register once, at start; the
// returned function removes it (for tests).
func OnReleased(fn BatchHook) (remove func()) { return addHook(&transitionHooks.released, fn) }

// OnRecalled registers fn to run, in the transaction, whenever a batch becomes recalled.
func OnRecalled(fn BatchHook) (remove func()) { return addHook(&transitionHooks.recalled, fn) }

func addHook(list *[]hookEntry, fn BatchHook) func() {
	transitionHooks.Lock()
	defer transitionHooks.Unlock()
	transitionHooks.next++
	id := transitionHooks.next
	*list = append(*list, hookEntry{id: id, fn: fn})
	return func() {
		transitionHooks.Lock()
		defer transitionHooks.Unlock()
		for i, h := range *list {
			if h.id == id {
				*list = append((*list)[:i:i], (*list)[i+1:]...)
				return
			}
		}
	}
}

func runTransitionHooks(txApp core.App, to, batchID string) error {
	transitionHooks.RLock()
	var list []hookEntry
	switch to {
	case StatusReleased:
		list = append(list, transitionHooks.released...)
	case StatusRecalled:
		list = append(list, transitionHooks.recalled...)
	}
	transitionHooks.RUnlock()
	for _, h := range list {
		if err := h.fn(txApp, batchID); err != nil {
			return fmt.Errorf("batch %s: %s hook: %w", batchID, to, err)
		}
	}
	return nil
}
