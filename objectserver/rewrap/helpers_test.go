package rewrap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"testing"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
	"opendev.org/x/arca/objectserver/sysmeta"
)

// putObject writes an encrypted object as the object server does.
func putObject(tb testing.TB, m *diskfile.Manager, keys *rewraptest.Keys, project, obj string, body []byte, extra map[string]string) {
	tb.Helper()
	if err := rewraptest.PutObject(m, keys, project, obj, body, extra); err != nil {
		tb.Fatal(err)
	}
}

// postObject writes a .meta file with the user metadata meta, as the
// object server's POST does (it never carries crypto metadata): sealed
// under the project's active key.
func postObject(m *diskfile.Manager, keys *rewraptest.Keys, project, obj string, meta map[string]string) error {
	k, err := keys.ActiveKey(context.Background(), project)
	if err != nil {
		return err
	}
	return postUnder(m, keys, project, obj, k.ID, meta)
}

// postPlain writes a .meta file as the object server did before user
// metadata was sealed: in the clear.
func postPlain(m *diskfile.Manager, project, obj string, meta map[string]string) error {
	return commitFile(m, project, obj, func(ts diskfile.Timestamp) (string, map[string]string) {
		values := map[string]string{"X-Timestamp": ts.Internal()}
		maps.Copy(values, meta)
		return diskfile.MetaName(ts, nil) + ".meta", values
	})
}

// postUnder writes a .meta file with meta sealed under key id of project
// (a POST acknowledged just before a rotation leaves one on the old key).
func postUnder(m *diskfile.Manager, keys *rewraptest.Keys, project, obj, id string, meta map[string]string) error {
	raw, err := keys.KeyMaterial(context.Background(), project, id)
	if err != nil {
		return err
	}
	mk, err := objcrypt.NewMetaKey(objcrypt.ProjectKey{ID: id, Key: raw})
	if err != nil {
		return err
	}
	var serr error
	err = commitFile(m, project, obj, func(ts diskfile.Timestamp) (string, map[string]string) {
		values := map[string]string{"X-Timestamp": ts.Internal()}
		maps.Copy(values, meta)
		serr = sysmeta.SealUserMeta(values, mk, "/AUTH_"+project+"/c/"+obj, sysmeta.MetaSet, nil)
		return diskfile.MetaName(ts, nil) + ".meta", values
	})
	return errors.Join(err, serr)
}

// deleteObject writes a tombstone, as the object server's DELETE does.
func deleteObject(m *diskfile.Manager, project, obj string) error {
	return commitFile(m, project, obj, func(ts diskfile.Timestamp) (string, map[string]string) {
		return ts.Internal() + ".ts", map[string]string{"X-Timestamp": ts.Internal()}
	})
}

// commitFile commits one bodiless file (.meta, .ts) of obj; file names it
// and gives its metadata for the timestamp the write gets.
func commitFile(m *diskfile.Manager, project, obj string, file func(diskfile.Timestamp) (string, map[string]string)) error {
	df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		return err
	}
	w, err := df.Create()
	if err != nil {
		return err
	}
	defer w.Abort()
	name, values := file(rewraptest.NextTimestamp())
	return w.Commit(context.Background(), name, values)
}

// readObject reads an object back as the object server's GET does: key id
// and wrapped key from the metadata.
func readObject(tb testing.TB, m *diskfile.Manager, keys *rewraptest.Keys, project, obj string) ([]byte, *diskfile.Object) {
	tb.Helper()
	df, err := m.Object("d1", rewraptest.Partition(obj), 0, "AUTH_"+project, "c", obj)
	if err != nil {
		tb.Fatal(err)
	}
	o, err := df.Open()
	if err != nil {
		tb.Fatalf("open %s: %v", obj, err)
	}
	defer o.Close()
	cm, err := sysmeta.Parse(o.Metadata)
	if err != nil {
		tb.Fatal(err)
	}
	pk, err := keys.KeyMaterial(context.Background(), project, cm.KeyID)
	if err != nil {
		tb.Fatalf("%s: key %s: %v", obj, cm.KeyID, err)
	}
	r, err := objcrypt.NewReader(o.File, o.Size, objcrypt.ProjectKey{ID: cm.KeyID, Key: pk}, o.Metadata["name"],
		&objcrypt.ReaderOptions{KeyID: cm.KeyID, WrappedKey: cm.WrappedKey, Parallelism: 1})
	if err != nil {
		tb.Fatalf("%s: reader: %v", obj, err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		tb.Fatalf("%s: read: %v", obj, err)
	}
	// the user metadata as the object server shows it: opened
	set, names := o.DataMetadata, sysmeta.DataSet
	if o.MetaMetadata != nil {
		set, names = o.MetaMetadata, sysmeta.MetaSet
	}
	um, _, err := sysmeta.OpenUserMeta(set, o.Metadata["name"], names, func(id string) (*objcrypt.MetaKey, error) {
		k, err := keys.KeyMaterial(context.Background(), project, id)
		if err != nil {
			return nil, err
		}
		return objcrypt.NewMetaKey(objcrypt.ProjectKey{ID: id, Key: k})
	})
	if err != nil {
		tb.Fatalf("%s: user metadata: %v", obj, err)
	}
	if um != nil {
		md := maps.Clone(o.Metadata) // the .data's own map when there is no .meta
		maps.Copy(md, um)
		o.Metadata = md
	}
	return buf.Bytes(), o
}
