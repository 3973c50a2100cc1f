//! The `status` table as a person reads it. By default it fits the
//! terminal, at most [`MAX_WIDTH`] columns: machine, state, address and
//! uptime (and the environment, when the table shows several); a cell too
//! long for its column is cut with "…". `-o wide` shows every column,
//! uncut, as kubectl's does. States are coloured the way the plan colours
//! its symbols (green running, yellow stopped or paused, red crashed or not
//! this lab's), only where the [`Printer`](super::Printer) allows colour.

use super::super::output::{paint, Tone};
use crate::observe::status::MachineStatus;

/// The default table is never wider than this, however wide the terminal.
const MAX_WIDTH: usize = 100;
const GAP: &str = "  ";

pub(super) struct TableOptions {
    /// Every column, uncut (`-o wide`).
    pub wide: bool,
    /// The terminal's columns, when known.
    pub terminal_width: Option<usize>,
    pub color: bool,
}

impl TableOptions {
    /// The width the default table must fit in.
    fn width(&self) -> usize {
        self.terminal_width.map_or(MAX_WIDTH, |w| w.min(MAX_WIDTH))
    }
}

struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, tone: None }
    }
}

pub(super) fn render(rows: &[MachineStatus], options: &TableOptions) -> String {
    let (header, cells) = if options.wide {
        wide_columns(rows)
    } else {
        fitting_columns(rows)
    };
    let mut widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| chars(&row[i].text))
                .chain([chars(header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    if !options.wide {
        shrink_to(&mut widths, options.width());
    }
    let header: Vec<Cell> = header.iter().map(|h| Cell::from(h.to_string())).collect();
    let mut out = line(&header, &widths, false);
    for row in &cells {
        out.push_str(&line(row, &widths, options.color));
    }
    out
}

/// Whether the rows differ in what `field` says.
fn several(rows: &[MachineStatus], field: impl Fn(&MachineStatus) -> &str) -> bool {
    rows.iter()
        .any(|r| rows.first().is_some_and(|f| field(f) != field(r)))
}

/// Machine, state, address, uptime; the environment first when the rows
/// come from several, and the host when they are on several.
fn fitting_columns(rows: &[MachineStatus]) -> (Vec<&'static str>, Vec<Vec<Cell>>) {
    let several_hosts = several(rows, |r| &r.host);
    let several = several(rows, |r| &r.environment);
    let mut header = vec!["MACHINE", "STATE", "ADDRESS", "UPTIME"];
    if several_hosts {
        header.insert(0, "HOST");
    }
    if several {
        header.insert(0, "ENVIRONMENT");
    }
    let cells = rows
        .iter()
        .map(|r| {
            let address = r
                .ssh
                .clone()
                .or_else(|| r.addresses.first().map(|a| without_prefix(a).to_string()));
            let mut row = vec![
                Cell::from(r.machine.clone()),
                state_cell(&r.state),
                Cell::from(address.unwrap_or_else(dash)),
                Cell::from(uptime(r)),
            ];
            if several_hosts {
                row.insert(0, Cell::from(r.host.clone()));
            }
            if several {
                row.insert(0, Cell::from(r.environment.clone()));
            }
            row
        })
        .collect();
    (header, cells)
}

/// Every column status knows (the host when the rows are on several).
fn wide_columns(rows: &[MachineStatus]) -> (Vec<&'static str>, Vec<Vec<Cell>>) {
    let with_shares = rows.iter().any(|r| !r.mount_tags.is_empty());
    let several_hosts = several(rows, |r| &r.host);
    let mut header = vec![
        "ENVIRONMENT",
        "MACHINE",
        "DOMAIN",
        "STATE",
        "CPU",
        "MEMORY",
        "ADDRESS",
        "SSH",
        "UPTIME",
        "IMAGE",
    ];
    if with_shares {
        header.push("SHARES");
    }
    if several_hosts {
        header.insert(1, "HOST");
    }
    let cells = rows
        .iter()
        .map(|r| {
            let cached = if r.image_cached {
                "cached"
            } else {
                "not cached"
            };
            let mut row = vec![
                Cell::from(r.environment.clone()),
                Cell::from(r.machine.clone()),
                Cell::from(r.domain.clone()),
                state_cell(&r.state),
                Cell::from(r.vcpus.map_or_else(dash, |v| v.to_string())),
                Cell::from(r.memory_mib.map_or_else(dash, |m| format!("{m} MiB"))),
                Cell::from(list(&r.addresses)),
                Cell::from(r.ssh.clone().unwrap_or_else(dash)),
                Cell::from(uptime(r)),
                Cell::from(format!("{} ({cached})", r.image)),
            ];
            if with_shares {
                row.push(Cell::from(list(&r.mount_tags)));
            }
            if several_hosts {
                row.insert(1, Cell::from(r.host.clone()));
            }
            row
        })
        .collect();
    (header, cells)
}

fn state_cell(state: &str) -> Cell {
    let tone = if state.ends_with("(not lvlab's)") || state.ends_with("(another lab's)") {
        Some(Tone::Red)
    } else {
        match state {
            "running" => Some(Tone::Green),
            "crashed" | "unreachable" => Some(Tone::Red),
            "undeployed" => None,
            _ => Some(Tone::Yellow),
        }
    };
    Cell {
        text: state.to_string(),
        tone,
    }
}

/// "-" where libvirt cannot tell (a stopped machine, a remote host).
fn uptime(row: &MachineStatus) -> String {
    row.uptime_seconds.map_or_else(dash, human_duration)
}

fn dash() -> String {
    "-".to_string()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        dash()
    } else {
        items.join(",")
    }
}

/// `10.0.2.15` of `10.0.2.15/24`.
fn without_prefix(address: &str) -> &str {
    address.split_once('/').map_or(address, |(a, _)| a)
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Narrows the widest column, one character at a time, until the columns
/// and the gaps between them fit in `limit`: long names give way first,
/// short columns keep their width.
fn shrink_to(widths: &mut [usize], limit: usize) {
    let gaps = GAP.len() * widths.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > limit {
        // The first of the widest: the leftmost column holds the names.
        let Some((index, &widest)) = widths.iter().enumerate().rev().max_by_key(|(_, w)| **w)
        else {
            return;
        };
        if widest <= 1 {
            return;
        }
        widths[index] -= 1;
    }
}

/// One line: each cell cut to its column and padded; colour wraps the text
/// only, so it never counts in the width.
fn line(row: &[Cell], widths: &[usize], color: bool) -> String {
    let cells: Vec<String> = row
        .iter()
        .zip(widths)
        .map(|(cell, &width)| {
            let text = cut(&cell.text, width);
            let pad = " ".repeat(width - chars(&text));
            match cell.tone {
                Some(tone) if color => format!("{}{pad}", paint(&text, tone)),
                _ => format!("{text}{pad}"),
            }
        })
        .collect();
    let mut line = cells.join(GAP).trim_end().to_string();
    line.push('\n');
    line
}

/// `text` in at most `width` characters, its end replaced by "…" when cut.
fn cut(text: &str, width: usize) -> String {
    if chars(text) <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn human_duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_column_gives_way_first() {
        let mut widths = vec![40, 10, 14, 6];
        shrink_to(&mut widths, 60);
        assert_eq!(widths, vec![24, 10, 14, 6]);
        let mut widths = vec![30, 30, 8];
        shrink_to(&mut widths, 50);
        assert_eq!(widths, vec![19, 19, 8]);
    }

    #[test]
    fn cut_names_end_in_an_ellipsis() {
        assert_eq!(cut("database-primary", 8), "databas…");
        assert_eq!(cut("web", 8), "web");
        assert_eq!(chars(&cut("ünïcödé-name", 5)), 5);
    }
}
