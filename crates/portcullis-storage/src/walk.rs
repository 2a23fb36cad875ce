//! The default [`Driver::walk`](crate::Driver::walk): a depth-first walk
//! built from `list` and `stat`, like distribution's `WalkFallback`.

use crate::{Driver, StorageError, WalkEntry, WalkFn, WalkStep};

/// Walks `root` by listing each directory and statting each child.
pub(crate) async fn walk_by_listing<D: Driver + ?Sized>(
    d: &D,
    root: &str,
    visit: &mut WalkFn<'_>,
) -> Result<(), StorageError> {
    if !d.stat(root).await?.is_dir {
        return Err(StorageError::NotFound(root.to_owned()));
    }
    // A stack of directories still to list, each with its children left to
    // show, so the order is depth first without recursion.
    let mut stack: Vec<(String, std::vec::IntoIter<String>)> =
        vec![(root.to_owned(), d.list(root).await?.into_iter())];
    while let Some((dir, children)) = stack.last_mut() {
        let Some(name) = children.next() else {
            stack.pop();
            continue;
        };
        let path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        let info = match d.stat(&path).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => continue, // deleted meanwhile
            Err(e) => return Err(e),
        };
        let entry = WalkEntry { path, info };
        match visit(&entry) {
            WalkStep::Stop => return Ok(()),
            WalkStep::SkipDir => {}
            WalkStep::Continue if entry.info.is_dir => match d.list(&entry.path).await {
                Ok(names) => stack.push((entry.path, names.into_iter())),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            },
            WalkStep::Continue => {}
        }
    }
    Ok(())
}
