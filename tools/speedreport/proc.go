package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU time and memory of processes, from /proc (Linux): what a measured
// server spent per request, all its processes counted (Swift's workers
// share their master's process group).

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU is a process's utime+stime (all its threads) from
// /proc/<pid>/stat; pid may be "self".
func procCPU(pid string) (time.Duration, error) {
	_, cpu, err := procStat(pid)
	return cpu, err
}

// procStat reads a process's group id and CPU time.
func procStat(pid string) (pgrp int, cpu time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("reading the CPU time of process %s: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow are counted from its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("process %s: malformed stat %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): pgrp is field 5, utime 14 and stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("process %s: short stat %q", pid, b)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("process %s: malformed stat: %w", pid, err)
	}
	return pgrp, time.Duration(ut+st) * clockTick, nil
}

// groupMembers lists the processes of process group pgid (a server and
// its workers).
func groupMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, _, err := procStat(e.Name()); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// groupCPU is the CPU time of every process in process group pgid.
func groupCPU(pgid int) (time.Duration, error) {
	pids, err := groupMembers(pgid)
	if err != nil {
		return 0, err
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("process group %d has no processes (is the server its group's leader? start it with setsid)", pgid)
	}
	var total time.Duration
	for _, p := range pids {
		cpu, err := procCPU(strconv.Itoa(p))
		if err != nil {
			return 0, err
		}
		total += cpu
	}
	return total, nil
}

// vmHWM is a process's peak resident set size, as /proc/<pid>/status
// gives it ("109 MB"), or "?".
func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
