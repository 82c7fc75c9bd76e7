package objectserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConnBodyReader checks what reads a taken-over connection's body:
// net/http's buffered bytes first, then the socket through pollReader,
// every byte in order, EOF when the peer closes, and the connection's
// read deadline honoured while it waits.
func TestConnBodyReader(t *testing.T) {
	tests := []struct {
		name     string
		buffered string   // already read ahead into net/http's buffer
		sent     []string // written by the peer, one write each
		closeAt  bool     // the peer closes after sending
		want     string
		wantErr  error
	}{
		{name: "buffered then socket", buffered: "head-", sent: []string{"one-", "two"}, closeAt: true, want: "head-one-two", wantErr: io.EOF},
		{name: "socket only", sent: []string{strings.Repeat("x", 300<<10)}, closeAt: true, want: strings.Repeat("x", 300<<10), wantErr: io.EOF},
		{name: "silent peer: deadline", buffered: "ab", want: "ab", wantErr: os.ErrDeadlineExceeded},
	}
	// how the server gets the connection: as accepted, and wrapped as
	// ServeListener's listener wraps every connection (batchconn.go)
	wraps := []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"tcp", func(c net.Conn) net.Conn { return c }},
		{"batchConn", func(c net.Conn) net.Conn { return &batchConn{Conn: c} }},
	}
	for _, tt := range tests {
		for _, wr := range wraps {
			t.Run(tt.name+"/"+wr.name, func(t *testing.T) {
				client, server := tcpPair(t)
				server = wr.wrap(server)
				if sc, ok := server.(syscall.Conn); !ok {
					t.Fatal("not a syscall.Conn: pollReader would not be used")
				} else if _, err := sc.SyscallConn(); err != nil {
					t.Fatalf("SyscallConn: %v: pollReader would not be used", err)
				}
				pre := bufio.NewReader(io.MultiReader(strings.NewReader(tt.buffered), failingReader{}))
				if tt.buffered != "" {
					if _, err := pre.Peek(len(tt.buffered)); err != nil {
						t.Fatal(err)
					}
				}
				go func() {
					for _, s := range tt.sent {
						_, _ = client.Write([]byte(s))
					}
					if tt.closeAt {
						_ = client.Close()
					}
				}()
				if err := server.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				r := connBodyReader(server, pre)
				var got bytes.Buffer
				buf := make([]byte, 64<<10)
				var err error
				for {
					var n int
					n, err = r.Read(buf)
					got.Write(buf[:n])
					if err != nil {
						break
					}
				}
				if got.String() != tt.want {
					t.Errorf("read %d bytes, want %d (%.20q...)", got.Len(), len(tt.want), got.String())
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("ended with %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}

// failingReader stands for the connection behind net/http's buffer: the
// body reader must not read through it.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("read past net/http's buffer") }

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}
