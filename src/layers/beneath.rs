//! Opening a file beneath a directory by names already checked, so that nothing renamed
//! in the meantime can lead the open outside it (`static_dir`, files.rs).
//!
//! files.rs decides *which* file may be served by its canonical path: symlinks resolved,
//! under the canonical directory, through no hidden name. Opening that path again by name
//! would follow whatever is there *now*: a directory on the way swapped for a symlink to
//! `/home` between the check and the open (`renameat2(RENAME_EXCHANGE)` in a loop does it
//! thousands of times a second) would be followed out. So [`open`] walks the same names
//! from the directory's own descriptor and follows no symlink at all: the checked path
//! has none, so a symlink found on the way now was put there since, and the open fails.
//!
//! - Linux 5.6 and later: one `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`.
//! - Linux where `openat2` is refused, and every other Unix (macOS, the BSDs): one
//!   `openat` per name with `O_NOFOLLOW`, each from the descriptor of the directory
//!   before it. The same guarantee in more calls.
//! - Windows has no `openat`: the checked path is opened without following a last
//!   reparse point, and the handle is kept only if the path Windows gives for it
//!   (`GetFinalPathNameByHandleW`, what `fs::canonicalize` uses) is the checked one.
//! - Anything else: a plain open by name, with no guarantee against the race.
//!
//! What no open can tell: a hard link placed inside the directory to a file outside
//! (docs/security.md).

use std::fs::File;
use std::io;
use std::path::{Component, Path};

/// Opens `rel`, a path relative to `root` made only of plain names (no `.`, `..`, root or
/// prefix), reaching it through no symlink. Both are expected canonical, so a symlink on
/// the way is one that appeared since they were checked: the open then fails (`ELOOP` or
/// `ENOTDIR` on Unix). The last name is opened without blocking (a FIFO does not wait
/// for a writer) and may be of any type: the caller checks it on the handle.
pub(crate) fn open(root: &Path, rel: &Path) -> io::Result<File> {
    let plain = rel.components().next().is_some()
        && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel:?} is not a path of plain names below the directory"),
        ));
    }
    imp::open(root, rel)
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod imp {
    use std::ffi::{CStr, CString};
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;

    /// A directory on the way: never a symlink. On Linux `O_PATH`, which needs no read
    /// permission (a directory only searchable, mode 711, still works), as for a path
    /// looked up by name; elsewhere read-only, so such a directory must be readable.
    #[cfg(target_os = "linux")]
    const DIR: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    #[cfg(not(target_os = "linux"))]
    const DIR: libc::c_int =
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

    /// The file itself: read-only, never a symlink, and without blocking (opening a FIFO
    /// would wait for a writer).
    pub(super) const FILE: libc::c_int =
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

    pub(super) fn open(root: &Path, rel: &Path) -> io::Result<File> {
        // The root by its name: it is canonical, and whoever can rename it or a
        // directory above it chose what DIR is anyway. Opened for each request, not
        // once, so a DIR deleted and made again (a site generator's build) is served.
        let dir = OwnedFd::from(OpenOptions::new().read(true).custom_flags(DIR).open(root)?);
        #[cfg(target_os = "linux")]
        match super::linux::openat2(dir.as_fd(), rel) {
            Err(e) if super::linux::unsupported(&e) => {}
            opened => return opened,
        }
        walk(dir, rel)
    }

    /// `rel` from `dir`, one `openat` per name, none followed if it is a symlink: each
    /// step can only go down into what the directory before it holds by that name.
    pub(super) fn walk(dir: OwnedFd, rel: &Path) -> io::Result<File> {
        let names = rel
            .iter()
            .map(|name| CString::new(name.as_bytes()).map_err(io::Error::from))
            .collect::<io::Result<Vec<_>>>()?;
        let Some((last, on_the_way)) = names.split_last() else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let mut dir = dir;
        for name in on_the_way {
            dir = openat(dir.as_fd(), name, DIR)?;
        }
        openat(dir.as_fd(), last, FILE).map(File::from)
    }

    fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
        // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is an open
        // descriptor, borrowed for the call. std has no openat: this is its reason.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened here and belongs to nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// `struct open_how` of linux/openat2.h (libc's is `non_exhaustive`, so it cannot be
    /// built here): the kernel takes its size, and refuses sizes it does not know.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }

    /// `rel` beneath `dir` in one call, the kernel refusing any symlink (magic links of
    /// /proc included) and any step out of `dir` (`EXDEV`).
    pub(super) fn openat2(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<File> {
        let path = CString::new(rel.as_os_str().as_bytes())?;
        let how = OpenHow {
            flags: super::imp::FILE as u64,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        };
        // SAFETY: `path` is NUL-terminated and `how` is a `struct open_how` of the size
        // passed; both outlive the call. `dir` is an open descriptor, borrowed for it.
        // libc has no wrapper for openat2 (glibc added one only in 2.42).
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::c_long::from(dir.as_raw_fd()),
                path.as_ptr(),
                &raw const how,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("openat2: bad fd"))?;
        // SAFETY: `fd` was just opened here and belongs to nothing else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Whether `openat2` itself is missing or refused rather than the file: kernels
    /// before 5.6 (`ENOSYS`), seccomp filters of container runtimes and qemu-user
    /// (`ENOSYS` or `EPERM`), a kernel that does not know a flag or the struct's size
    /// (`EINVAL`, `E2BIG`). Then the walk runs instead; it refuses the same paths, so
    /// falling back when openat2 had a real reason to refuse costs a few calls, no safety.
    pub(super) fn unsupported(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG)
        )
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod imp {
    use std::ffi::OsString;
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::ffi::OsStringExt;
    use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
    use std::os::windows::io::{AsRawHandle, RawHandle};
    use std::path::{Path, PathBuf};

    /// winbase.h: open a symlink or junction itself instead of what it points to.
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    /// winnt.h: the file is a symlink, a junction or another reparse point.
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;

    // A local block instead of the windows-sys crate: one function of kernel32, which
    // std links already.
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetFinalPathNameByHandleW(file: RawHandle, path: *mut u16, len: u32, flags: u32) -> u32;
    }

    /// Windows has no open beneath a handle: open the checked path, then keep the handle
    /// only if it is not a reparse point and the path Windows gives for it is the one
    /// checked (a junction swapped in on the way gives another path).
    pub(super) fn open(root: &Path, rel: &Path) -> io::Result<File> {
        let checked = root.join(rel);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(&checked)?;
        let reparse = file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0;
        if reparse || final_path(&file)? != checked {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file is not where it was checked: something on its way changed",
            ));
        }
        Ok(file)
    }

    /// The handle's path as `fs::canonicalize` gives it (`\\?\C:\…`): flags 0 are
    /// FILE_NAME_NORMALIZED and VOLUME_NAME_DOS, as std passes.
    fn final_path(file: &File) -> io::Result<PathBuf> {
        let mut buf = vec![0u16; 512];
        // Twice at most: a first answer too short says the length it needs.
        for _ in 0..2 {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            // SAFETY: the handle is open for the call; the pointer and length describe
            // `buf`, which Windows fills up to `len` u16s.
            let n = unsafe {
                GetFinalPathNameByHandleW(file.as_raw_handle(), buf.as_mut_ptr(), len, 0)
            };
            let n = n as usize;
            if n == 0 {
                return Err(io::Error::last_os_error());
            }
            if n < buf.len() {
                buf.truncate(n);
                return Ok(PathBuf::from(OsString::from_wide(&buf)));
            }
            buf.resize(n, 0);
        }
        Err(io::Error::other("the file's path kept growing"))
    }
}

#[cfg(not(any(unix, windows)))]
mod imp {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    /// No way to open beneath a directory here: by name, as checked a moment ago.
    pub(super) fn open(root: &Path, rel: &Path) -> io::Result<File> {
        File::open(root.join(rel))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// `tmp/site/d/f.txt` ("inside") and `tmp/outside/f.txt` ("SECRET"), removed on drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(name: &str) -> Tmp {
            let dir =
                std::env::temp_dir().join(format!("tinyws-beneath-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("site/d")).unwrap();
            fs::create_dir_all(dir.join("outside")).unwrap();
            fs::write(dir.join("site/d/f.txt"), "inside").unwrap();
            fs::write(dir.join("outside/f.txt"), "SECRET").unwrap();
            Tmp(fs::canonicalize(dir).unwrap())
        }

        fn site(&self) -> PathBuf {
            self.0.join("site")
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn read(file: io::Result<File>) -> io::Result<String> {
        let mut text = String::new();
        file?.read_to_string(&mut text)?;
        Ok(text)
    }

    /// The fallback on its own, as it runs where openat2 is refused and off Linux.
    fn walk(root: &Path, rel: &str) -> io::Result<File> {
        let dir = OwnedFd::from(File::open(root)?);
        imp::walk(dir, Path::new(rel))
    }

    #[test]
    fn plain_names_are_opened_beneath_the_root() {
        let tmp = Tmp::new("plain");
        assert_eq!(
            read(open(&tmp.site(), Path::new("d/f.txt"))).unwrap(),
            "inside"
        );
        assert_eq!(read(walk(&tmp.site(), "d/f.txt")).unwrap(), "inside");
    }

    #[test]
    fn paths_that_are_not_plain_names_are_refused_before_any_open() {
        let tmp = Tmp::new("names");
        let outside = tmp.0.join("outside/f.txt");
        for rel in [
            "",
            ".",
            "./d/f.txt",
            "../outside/f.txt",
            "d/../../outside/f.txt",
        ] {
            let e = open(&tmp.site(), Path::new(rel)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{rel:?}");
        }
        let e = open(&tmp.site(), &outside).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn no_symlink_is_followed_on_the_way_or_at_the_end() {
        let tmp = Tmp::new("links");
        let site = tmp.site();
        symlink(tmp.0.join("outside"), site.join("out")).unwrap();
        symlink(tmp.0.join("outside/f.txt"), site.join("secret.txt")).unwrap();
        // Even one that stays inside: the checked path has none, so one now is new.
        symlink(site.join("d"), site.join("alias")).unwrap();
        symlink("f.txt", site.join("d/same.txt")).unwrap();
        for rel in ["out/f.txt", "secret.txt", "alias/f.txt", "d/same.txt"] {
            assert!(open(&site, Path::new(rel)).is_err(), "open {rel}");
            assert!(walk(&site, rel).is_err(), "walk {rel}");
        }
    }

    /// openat2 on its own (`open` would hide a refusal behind the walk), where the
    /// kernel has it.
    #[cfg(target_os = "linux")]
    #[test]
    fn openat2_follows_no_symlink_and_does_not_leave() {
        use std::os::fd::AsFd;
        let tmp = Tmp::new("openat2");
        let site = tmp.site();
        symlink(tmp.0.join("outside"), site.join("out")).unwrap();
        symlink("f.txt", site.join("d/same.txt")).unwrap();
        let root = File::open(&site).unwrap();
        let openat2 = |rel: &str| super::linux::openat2(root.as_fd(), Path::new(rel));
        match openat2("d/f.txt") {
            Err(e) if super::linux::unsupported(&e) => {
                eprintln!("openat2 refused here ({e}); only the walk was tested");
                return;
            }
            opened => assert_eq!(read(opened).unwrap(), "inside"),
        }
        for (rel, errno) in [
            ("out/f.txt", libc::ELOOP),
            ("d/same.txt", libc::ELOOP),
            ("../outside/f.txt", libc::EXDEV),
        ] {
            let e = openat2(rel).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{rel}: {e}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn openat2_is_given_up_only_when_the_call_itself_is_refused() {
        let refused = |errno| super::linux::unsupported(&io::Error::from_raw_os_error(errno));
        for errno in [libc::ENOSYS, libc::EPERM, libc::EINVAL, libc::E2BIG] {
            assert!(refused(errno), "{errno}");
        }
        for errno in [
            libc::ENOENT,
            libc::ELOOP,
            libc::EXDEV,
            libc::ENOTDIR,
            libc::EACCES,
        ] {
            assert!(!refused(errno), "{errno}");
        }
    }

    /// The race of the issue against the fallback alone: `d` and a symlink `e` to the
    /// outside directory swap names atomically, in a loop, while `d/f.txt` is opened.
    /// Opening by name (`File::open`) in the same loop shows the race is live.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_walk_never_leaves_while_a_directory_is_swapped_for_a_symlink() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let tmp = Tmp::new("race");
        let site = tmp.site();
        symlink(tmp.0.join("outside"), site.join("e")).unwrap();
        let (d, e) = (site.join("d"), site.join("e"));
        let stop = AtomicBool::new(false);
        let (mut inside, mut refused, mut leaked, mut by_name_outside) = (0, 0, 0, 0);
        std::thread::scope(|s| {
            let swapper = s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    exchange(&d, &e)?;
                }
                io::Result::Ok(())
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            for _ in 0..20_000 {
                match read(walk(&site, "d/f.txt")).as_deref() {
                    Ok("inside") => inside += 1,
                    Ok(_) => leaked += 1,
                    Err(_) => refused += 1,
                }
                if read(File::open(site.join("d/f.txt"))).is_ok_and(|t| t == "SECRET") {
                    by_name_outside += 1;
                }
                if std::time::Instant::now() > deadline {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            swapper.join().unwrap().expect("the swapper failed");
        });
        eprintln!(
            "walk: {inside} inside, {refused} refused, {leaked} outside; \
             by name: {by_name_outside} outside"
        );
        assert_eq!(leaked, 0, "the walk read the outside file {leaked} times");
        assert!(
            inside > 0 && refused > 0,
            "{inside} inside, {refused} refused"
        );
        assert!(
            by_name_outside > 0,
            "the swap never showed: the test proves nothing"
        );
    }

    /// `renameat2(RENAME_EXCHANGE)` by its system call number (no glibc version needed).
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn exchange(a: &Path, b: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
        let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: both are NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::c_long::from(libc::AT_FDCWD),
                a.as_ptr(),
                libc::c_long::from(libc::AT_FDCWD),
                b.as_ptr(),
                libc::RENAME_EXCHANGE as libc::c_long,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}
