package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemRow is the memory of one service: its process and descendants.
type MemRow struct {
	Name   string  `json:"name"`
	PID    int     `json:"pid"`
	Procs  int     `json:"procs"`
	RSSMiB float64 `json:"rss_mib"` // VmRSS, summed over the tree
	HWMMiB float64 `json:"hwm_mib"` // VmHWM (peak RSS), summed over the tree
}

// children maps each PID to its children, from /proc/*/stat.
func children() map[int][]int {
	m := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		m[ppid] = append(m[ppid], pid)
	}
	return m
}

// statusKB reads VmRSS and VmHWM (kB) of pid.
func statusKB(pid int) (rss, hwm float64, ok bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseFloat(fs[0], 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, true
}

// memCmd: benchreport mem -out FILE NAME=PID...
func memCmd(args []string) error {
	fs := flag.NewFlagSet("mem", flag.ExitOnError)
	out := fs.String("out", "", "JSON output file")
	_ = fs.Parse(args)
	kids := children()
	var rows []MemRow
	for _, a := range fs.Args() {
		name, v, ok := strings.Cut(a, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 1 {
			return errors.New("mem: want NAME=PID, got " + a)
		}
		r := MemRow{Name: name, PID: pid}
		stack := []int{pid}
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			rss, hwm, ok := statusKB(p)
			if !ok {
				continue
			}
			r.Procs++
			r.RSSMiB += rss / 1024
			r.HWMMiB += hwm / 1024
			stack = append(stack, kids[p]...)
		}
		if r.Procs == 0 {
			fmt.Fprintf(os.Stderr, "mem: %s (pid %d) is not running\n", name, pid)
			continue
		}
		fmt.Printf("%-22s pid %-7d %2d procs  RSS %7.1f MiB  peak %7.1f MiB\n", r.Name, r.PID, r.Procs, r.RSSMiB, r.HWMMiB)
		rows = append(rows, r)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		return os.WriteFile(*out, append(b, '\n'), 0o644)
	}
	return nil
}
