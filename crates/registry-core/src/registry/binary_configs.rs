//! Writing the configs section of the binary form (its layout is in the parent module).

use std::io::{self, Write};

use super::*;

impl Frozen {
    /// Writes the configs; with `mark_current` (format 3 on), a history entry that is the
    /// config as it stands as a mark, else (format 2) as a copy.
    pub(super) fn write_configs<W: Write>(
        &self,
        out: &mut Hashing<W>,
        frame: &mut Vec<u8>,
        mark_current: bool,
    ) -> io::Result<()> {
        let configs = &self.configs;
        let head = ConfigsHead {
            revision: configs.revision,
            configs: configs.configs.len() as u64,
            histories: configs.history.len() as u64,
        };
        write_frame(out, frame, &head)?;
        for (key, config) in &configs.configs {
            write_frame(out, frame, &ConfigWritten::of(key, config))?;
        }
        for (key, entries) in &configs.history {
            if !mark_current {
                let history = CopiedHistoryWritten {
                    key,
                    entries: entries
                        .iter()
                        .map(|entry| {
                            (
                                entry.revision,
                                entry.at_ms,
                                entry.op,
                                ConfigWritten::of(key, &entry.config),
                            )
                        })
                        .collect(),
                };
                write_frame(out, frame, &history)?;
                continue;
            }
            // Both lists are in key order.
            let current = configs
                .configs
                .binary_search_by(|(k, _)| k.cmp(key))
                .ok()
                .map(|at| &configs.configs[at].1);
            let history = HistoryWritten {
                key,
                entries: entries
                    .iter()
                    .map(|entry| {
                        let is_current = current.is_some_and(|c| Arc::ptr_eq(c, &entry.config));
                        let config = (!is_current).then(|| ConfigWritten::of(key, &entry.config));
                        (entry.revision, entry.at_ms, entry.op, config)
                    })
                    .collect(),
            };
            write_frame(out, frame, &history)?;
        }
        Ok(())
    }
}
