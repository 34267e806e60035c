//! `logs`: follow the components' log files, like `tail -n 20 -F` over several files (a `==> file <==`
//! header whenever the output switches file; a file that is truncated or replaced, as a fresh `up`
//! does, is read again from its start).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

struct Followed {
    path: PathBuf,
    pos: u64,
    inode: u64,
}

fn inode(path: &PathBuf) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.ino(), m.len()))
}

/// Print the last `lines` lines of each file, then what is appended, until killed.
pub fn follow(paths: Vec<PathBuf>, lines: usize) -> ! {
    let mut out = std::io::stdout();
    let mut last: Option<usize> = None;
    let mut files: Vec<Followed> = Vec::new();
    for (i, path) in paths.into_iter().enumerate() {
        let (ino, len) = inode(&path).unwrap_or((0, 0));
        let _ = writeln!(
            out,
            "{}==> {} <==",
            if i > 0 { "\n" } else { "" },
            path.display()
        );
        let _ = writeln!(out, "{}", crate::process::tail(&path, lines));
        last = Some(i);
        files.push(Followed {
            path,
            pos: len,
            inode: ino,
        });
    }
    let _ = out.flush();
    loop {
        for (i, f) in files.iter_mut().enumerate() {
            let Some((ino, len)) = inode(&f.path) else {
                continue;
            };
            if ino != f.inode || len < f.pos {
                f.inode = ino;
                f.pos = 0;
            }
            if len == f.pos {
                continue;
            }
            let Ok(mut file) = File::open(&f.path) else {
                continue;
            };
            let mut buf = Vec::new();
            if file.seek(SeekFrom::Start(f.pos)).is_err() || file.read_to_end(&mut buf).is_err() {
                continue;
            }
            f.pos += buf.len() as u64;
            if last != Some(i) {
                let _ = writeln!(out, "\n==> {} <==", f.path.display());
                last = Some(i);
            }
            if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
                // The reader went away (a closed pipe): done.
                std::process::exit(0);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
