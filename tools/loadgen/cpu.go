package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU accounting from /proc (Linux; elsewhere the figures are simply
// absent). It says where the machine's CPU went during a measured slice:
// the processes named with -pid (each with its descendants, so uwsgi's
// workers count for their master), the load generator itself, and the
// whole machine, the difference being work that is not part of the run.

// clockTick is USER_HZ: 100 on every Linux architecture Go runs on.
const clockTick = 100

// Watch is a process tree whose CPU time is measured.
type Watch struct {
	Name string
	PID  int
}

// CPUSample is CPU time in clock ticks per watched name, plus "loadgen"
// (this process) and "machine" (all CPUs, busy time).
type CPUSample map[string]uint64

const (
	cpuSelf    = "loadgen"
	cpuMachine = "machine"
)

type procStat struct {
	ppid  int
	ticks uint64 // utime + stime
}

func readProcStat(path string) (procStat, bool) {
	b, err := os.ReadFile(path) //nolint:gosec // a /proc/<pid>/stat path built here
	if err != nil {
		return procStat{}, false
	}
	// the command name is in parentheses and may contain spaces
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return procStat{ppid: ppid, ticks: ut + st}, true
}

func machineBusy() (uint64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal: all but idle and iowait
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		busy += v
	}
	return busy, true
}

// SampleCPU reads the counters now.
func SampleCPU(watches []Watch) CPUSample {
	s := CPUSample{}
	if v, ok := machineBusy(); ok {
		s[cpuMachine] = v
	}
	if st, ok := readProcStat("/proc/self/stat"); ok {
		s[cpuSelf] = st.ticks
	}
	addRunqWait(s, cpuSelf, os.Getpid())
	if len(watches) == 0 {
		return s
	}
	procs := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if st, ok := readProcStat(d); ok {
			procs[pid] = st
		}
	}
	for _, w := range watches {
		var total uint64
		for pid, st := range procs {
			for p, depth := pid, 0; p > 1 && depth < 16; depth++ {
				if p == w.PID {
					total += st.ticks
					addRunqWait(s, w.Name, pid)
					break
				}
				parent, ok := procs[p]
				if !ok {
					break
				}
				p = parent.ppid
			}
		}
		s[w.Name] += total
	}
	return s
}

// runqPrefix marks a CPUSample entry that is run-queue wait in
// nanoseconds, not CPU ticks: "runq:NAME:TID", one per thread, so that a
// thread that started or ended between two samples (MariaDB has one per
// connection) does not spoil the others' sum.
const runqPrefix = "runq:"

// addRunqWait adds to s, under name, the time each thread of process pid
// has spent runnable but waiting for a CPU, in nanoseconds: the second
// field of /proc/PID/task/TID/schedstat (kernels with schedstats; nothing
// elsewhere). On a machine whose cores the load generator shares with the
// servers, it says how much of a latency was a wait for a CPU rather than
// work. A thread that ended between two samples takes its share with it.
func addRunqWait(s CPUSample, name string, pid int) {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/[0-9]*/schedstat")
	for _, t := range tasks {
		b, err := os.ReadFile(t) //nolint:gosec // a /proc path built here
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			tid := filepath.Base(filepath.Dir(t))
			s[runqPrefix+name+":"+tid] = v
		}
	}
}

// RunqPerRequest describes the run-queue wait per completed request of
// each watched process and the load generator, e.g. "arca-api 90µs,
// mariadbd 400µs, loadgen 30µs"; empty where schedstat is unavailable.
func (s CPUSample) RunqPerRequest(watches []Watch, requests uint64) string {
	if requests == 0 {
		return ""
	}
	sums := map[string]uint64{}
	for k, v := range s {
		if rest, ok := strings.CutPrefix(k, runqPrefix); ok {
			if i := strings.LastIndexByte(rest, ':'); i > 0 {
				sums[rest[:i]] += v
			}
		}
	}
	var parts []string
	for _, name := range append(watchNames(watches), cpuSelf) {
		if v, ok := sums[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0fµs", name, float64(v)/1e3/float64(requests)))
		}
	}
	return strings.Join(parts, ", ")
}

func watchNames(watches []Watch) []string {
	names := make([]string, 0, len(watches)+1)
	for _, w := range watches {
		names = append(names, w.Name)
	}
	return names
}

// Sub returns s - before, per name; a thread's run-queue wait that has no
// earlier sample (the thread started in between) counts from 0.
func (s CPUSample) Sub(before CPUSample) CPUSample {
	d := CPUSample{}
	for k, v := range s {
		b, ok := before[k]
		switch {
		case ok && v >= b:
			d[k] = v - b
		case !ok && strings.HasPrefix(k, runqPrefix):
			d[k] = v
		}
	}
	return d
}

// Add accumulates o into s.
func (s CPUSample) Add(o CPUSample) {
	for k, v := range o {
		s[k] += v
	}
}

// perRequest is the CPU time per request of the watched process name;
// false when it was not measured.
func (s CPUSample) perRequest(name string, requests uint64) (time.Duration, bool) {
	v, ok := s[name]
	if !ok || requests == 0 {
		return 0, false
	}
	return time.Duration(float64(v) * float64(time.Second) / clockTick / float64(requests)), true
}

// PerRequest describes the CPU time per completed request of each watched
// process, the load generator and the rest of the machine, e.g.
// "arca-api 180µs, mariadbd 90µs, loadgen 60µs, rest of machine 300µs".
func (s CPUSample) PerRequest(watches []Watch, requests uint64) string {
	if requests == 0 {
		return ""
	}
	us := func(ticks uint64) string {
		return fmt.Sprintf("%.0fµs", float64(ticks)*1e6/clockTick/float64(requests))
	}
	var parts []string
	var named uint64
	for _, w := range watches {
		if v, ok := s[w.Name]; ok {
			parts = append(parts, w.Name+" "+us(v))
			named += v
		}
	}
	if v, ok := s[cpuSelf]; ok {
		parts = append(parts, cpuSelf+" "+us(v))
		named += v
	}
	if m, ok := s[cpuMachine]; ok && m >= named {
		parts = append(parts, "rest of machine "+us(m-named))
	}
	return strings.Join(parts, ", ")
}
