package diskfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// isTmpDir reports whether name is a policy's temp directory: "tmp" or
// "tmp-N".
func isTmpDir(name string) bool {
	if name == "tmp" {
		return true
	}
	n, ok := strings.CutPrefix(name, "tmp-")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 31)
	return err == nil
}

// RemoveStaleTemp removes the files in every device's tmp and tmp-N
// directory that were last modified before before, and returns how many it
// removed. Devices that fail the mount check are skipped.
//
// Only an unfinished write leaves a file there, and only where the file
// system refuses O_TMPFILE (elsewhere a Writer's file has no name until
// Commit links it, and a dead write leaves nothing): Writer.Commit renames
// its named temp file into the object directory and Abort removes it, so a
// temp file outlives its request only when the process died (kill -9, OOM,
// power loss) between Create and Commit. (Commit's replacement of a file
// of the same name passes through a name there too, for the moment
// between its link and its rename.) Such a file was never acknowledged and
// nothing will ever rename it, so it is garbage. Called at start-up with
// the start time, this is safe without an age margin: nothing of this
// process is in flight yet, and a file a concurrent writer (Swift's
// object-updater rewriting an async pending through tmp) creates after
// start is newer than before and stays. Swift leaves this to its auditor's
// reclaim pass; doing it at start means a crash never leaves the device
// with disk space held by dead writes.
func (m *Manager) RemoveStaleTemp(before time.Time) (int, error) {
	devs, err := os.ReadDir(m.Devices)
	if err != nil {
		return 0, fmt.Errorf("diskfile: listing devices: %w", err)
	}
	removed := 0
	var errs []error
	for _, dev := range devs {
		if !dev.IsDir() {
			continue
		}
		devPath, err := m.DevicePath(dev.Name())
		if err != nil {
			continue // unmounted: nothing of ours can be there
		}
		entries, err := os.ReadDir(devPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !isTmpDir(e.Name()) {
				continue
			}
			n, err := removeOlder(filepath.Join(devPath, e.Name()), before)
			removed += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}

func removeOlder(dir string, before time.Time) (int, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("diskfile: listing %s: %w", dir, err)
	}
	n := 0
	var errs []error
	for _, f := range files {
		if !f.Type().IsRegular() {
			continue
		}
		fi, err := f.Info()
		if err != nil || !fi.ModTime().Before(before) {
			continue // gone meanwhile, or written after start
		}
		if err := os.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("diskfile: removing stale temp file: %w", err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
