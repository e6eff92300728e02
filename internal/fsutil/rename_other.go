//go:build !linux

package fsutil

// RenameNoReplace renames oldpath to newpath, failing with an error that matches fs.ErrExist
// when newpath exists. Here it checks first and renames after, which another process may race.
func RenameNoReplace(oldpath, newpath string) error {
	return renameChecked(oldpath, newpath)
}
