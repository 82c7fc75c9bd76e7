package diskfile

import "golang.org/x/sys/unix"

func setxattrPath(path, key, value string) error {
	return unix.Setxattr(path, key, []byte(value), 0)
}
