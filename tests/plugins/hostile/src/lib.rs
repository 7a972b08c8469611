//! test-plugin-hostile: tools that each try to break out of the sandbox, reporting exactly what happened.
//!
//! Nothing here filters or pre-checks: every attempt goes straight to the
//! sandbox, and the raw outcome (success, error text, or a trap) is what the
//! host's tests assert on.

use std::hint::black_box;
use std::io::Write;

use agent_plugin_sdk::prelude::*;

const MIB: usize = 1 << 20;

struct Hostile;

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> ToolSpec {
    ToolSpec::new(name, description).schema(json!({
        "type": "object",
        "properties": properties,
        "required": required,
    }))
}

impl Plugin for Hostile {
    fn tools() -> Vec<ToolSpec> {
        let string = json!({ "type": "string" });
        let count = json!({ "type": "integer", "minimum": 0 });
        vec![
            tool(
                "read_file",
                "Read a file with std::fs.",
                json!({ "path": string }),
                &["path"],
            ),
            tool(
                "write_file",
                "Write a file with std::fs.",
                json!({ "path": string, "content": string }),
                &["path", "content"],
            ),
            tool(
                "list_dir",
                "List a directory with std::fs.",
                json!({ "path": string }),
                &["path"],
            ),
            tool(
                "get_env",
                "Read an environment variable.",
                json!({ "name": string }),
                &["name"],
            ),
            tool(
                "tcp_connect",
                "Open a TCP connection to host:port.",
                json!({ "addr": string }),
                &["addr"],
            ),
            tool(
                "fetch_url",
                "GET a URL through wasi:http.",
                json!({ "url": string }),
                &["url"],
            ),
            tool(
                "alloc",
                "Allocate and touch `mb` MiB.",
                json!({ "mb": count }),
                &["mb"],
            ),
            tool("spin", "Loop forever.", json!({}), &[]),
            tool(
                "recurse",
                "Recurse `depth` levels deep.",
                json!({ "depth": count }),
                &["depth"],
            ),
            tool(
                "flood_stdout",
                "Print `mb` MiB to stdout.",
                json!({ "mb": count }),
                &["mb"],
            ),
            tool(
                "flood_stderr",
                "Print `mb` MiB to stderr.",
                json!({ "mb": count }),
                &["mb"],
            ),
            tool(
                "huge_result",
                "Return a string of `mb` MiB.",
                json!({ "mb": count }),
                &["mb"],
            ),
            tool(
                "panic",
                "Panic with `message`.",
                json!({ "message": string }),
                &["message"],
            ),
            tool(
                "log_flood",
                "Send `lines` host log lines of `bytes` bytes each.",
                json!({ "lines": count, "bytes": count }),
                &["lines", "bytes"],
            ),
            tool(
                "kv_big",
                "Store a `kb` KiB value under `key` in the host kv state.",
                json!({ "key": string, "kb": count }),
                &["key", "kb"],
            ),
            tool(
                "progress_steps",
                "Report progress `steps` times, then return \"ok\" (not hostile: it feeds tool-progress hooks).",
                json!({ "steps": count }),
                &["steps"],
            ),
            tool(
                "symlink",
                "Create the symbolic link `link` (a guest path) pointing at `target`.",
                json!({ "target": string, "link": string }),
                &["target", "link"],
            ),
            tool(
                "rename",
                "Rename (move) `from` to `to`.",
                json!({ "from": string, "to": string }),
                &["from", "to"],
            ),
            tool(
                "hold_files",
                "Open `path` up to `count` times and hold every handle (as open files, or with `streams` as read streams whose descriptors are dropped); on the first refusal close one and try again. Reports {opened, error, reopened} as JSON.",
                json!({ "path": string, "count": count, "streams": { "type": "boolean" } }),
                &["path", "count"],
            ),
            tool("ok", "Return \"ok\".", json!({}), &[]),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "read_file" => std::fs::read_to_string(args.str_field("path")?)
                .map(Output::text)
                .map_err(ToolError::failed),
            "write_file" => std::fs::write(args.str_field("path")?, args.str_field("content")?)
                .map(|()| Output::text("written"))
                .map_err(ToolError::failed),
            "list_dir" => list_dir(args.str_field("path")?),
            "get_env" => Ok(Output::text(
                std::env::var(args.str_field("name")?).unwrap_or_else(|_| "unset".to_owned()),
            )),
            "tcp_connect" => std::net::TcpStream::connect(args.str_field("addr")?)
                .map(|_| Output::text("connected"))
                .map_err(ToolError::failed),
            "fetch_url" => http_get(args.str_field("url")?),
            "alloc" => Ok(alloc(mib(&args)?)),
            "spin" => spin(),
            "recurse" => {
                let depth = black_box(args.u64_field("depth")?);
                Ok(Output::text(format!(
                    "recursed {depth} levels ({})",
                    recurse(depth)
                )))
            }
            "flood_stdout" => flood(std::io::stdout(), mib(&args)?),
            "flood_stderr" => flood(std::io::stderr(), mib(&args)?),
            "huge_result" => Ok(Output::text("x".repeat(mib(&args)?))),
            "panic" => panic!("{}", args.str_field("message")?),
            "log_flood" => {
                let lines = args.u64_field("lines")?;
                let line = "l".repeat(args.u64_field("bytes")? as usize);
                for _ in 0..lines {
                    host::log(Level::Info, &line);
                }
                Ok(Output::text(format!("logged {lines} lines")))
            }
            // The host's refusal (a key or value over its limit) comes back
            // as a failed tool error carrying the host's message.
            "kv_big" => kv::set(
                args.str_field("key")?,
                &vec![b'v'; args.u64_field("kb")? as usize * 1024],
            )
            .map(|()| Output::text("stored")),
            "progress_steps" => {
                let steps = args.u64_field("steps")?;
                for step in 1..=steps {
                    host::progress(step, steps, "working");
                }
                Ok(Output::text("ok"))
            }
            "symlink" => symlink(args.str_field("target")?, args.str_field("link")?),
            "rename" => std::fs::rename(args.str_field("from")?, args.str_field("to")?)
                .map(|()| Output::text("renamed"))
                .map_err(ToolError::failed),
            "hold_files" => hold_files(
                args.str_field("path")?,
                args.u64_field("count")?,
                args.get("streams")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            "ok" => Ok(Output::text("ok")),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Hostile);

fn mib(args: &Value) -> Result<usize, ToolError> {
    Ok(args.u64_field("mb")? as usize * MIB)
}

fn list_dir(path: &str) -> Result<Output, ToolError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(ToolError::failed)? {
        names.push(
            entry
                .map_err(ToolError::failed)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    Ok(Output::text(names.join("\n")))
}

/// Touches one byte per page so the memory is really committed, not just
/// reserved; an allocation over the limit aborts (traps) the instance.
fn alloc(bytes: usize) -> Output {
    let mut block = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        block[i] = 1;
    }
    black_box(&block);
    Output::text("allocated")
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        // black_box keeps the optimizer from proving the loop useless.
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Not tail-recursive (the caller still works on the result), and with no
/// address-taken locals, so each level costs a frame on wasm's own stack
/// rather than on Rust's shadow stack in linear memory: a large depth hits
/// the engine's stack limit (a stack-overflow trap), not a stray memory access.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    recurse(depth - 1).wrapping_mul(31).wrapping_add(depth)
}

fn flood(mut out: impl Write, bytes: usize) -> Result<Output, ToolError> {
    let line = [b'y'; 1024];
    let mut written = 0;
    while written < bytes {
        let n = line.len().min(bytes - written);
        out.write_all(&line[..n]).map_err(ToolError::failed)?;
        written += n;
    }
    out.flush().map_err(ToolError::failed)?;
    Ok(Output::text(format!("wrote {written} bytes")))
}

/// A bare GET through wasi:http; the status on success, the host's error
/// otherwise.
fn http_get(url: &str) -> Result<Output, ToolError> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| ToolError::invalid_arguments("`url` needs a scheme"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let set = request
        .set_scheme(Some(&scheme))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)));
    set.map_err(|()| ToolError::failed("the host rejected the URL"))?;
    let pending = outgoing_handler::handle(request, None)
        .map_err(|code| ToolError::failed(format!("{code:?}")))?;
    loop {
        match pending.get() {
            Some(Ok(Ok(response))) => {
                return Ok(Output::text(format!("status {}", response.status())));
            }
            Some(Ok(Err(code))) => return Err(ToolError::failed(format!("{code:?}"))),
            Some(Err(())) => return Err(ToolError::failed("response already taken")),
            None => pending.subscribe().block(),
        }
    }
}

/// The preopened directory `path` lies in, and the rest of the path. Goes
/// to wasi:filesystem directly: std has no stable symlink for WASI.
fn preopen_for(path: &str) -> Result<(wasip2::filesystem::types::Descriptor, String), ToolError> {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, guest)| {
            let rest = path.strip_prefix(guest.as_str())?.strip_prefix('/')?;
            Some((dir, rest.to_owned()))
        })
        .ok_or_else(|| ToolError::failed(format!("{path} is not in a preopened directory")))
}

fn symlink(target: &str, link: &str) -> Result<Output, ToolError> {
    let (dir, rest) = preopen_for(link)?;
    dir.symlink_at(target, &rest)
        .map(|()| Output::text("linked"))
        .map_err(|code| ToolError::failed(format!("symlink-at refused: {code:?}")))
}

/// One open handle, kept only to be dropped: a std file, or a read stream
/// outliving its descriptor.
type Held = Box<dyn std::any::Any>;

fn open_once(path: &str, streams: bool) -> Result<Held, String> {
    if !streams {
        return std::fs::File::open(path)
            .map(|file| Box::new(file) as Held)
            .map_err(|err| err.to_string());
    }
    use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
    let (dir, rest) = preopen_for(path).map_err(|err| format!("{err:?}"))?;
    let file = dir
        .open_at(
            PathFlags::empty(),
            &rest,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .map_err(|code| format!("open-at: {code:?}"))?;
    // The descriptor is dropped here; only the stream keeps the file open.
    file.read_via_stream(0)
        .map(|stream| Box::new(stream) as Held)
        .map_err(|code| format!("read-via-stream: {code:?}"))
}

/// Holds as many handles as the sandbox lets it, up to `count`.
fn hold_files(path: &str, count: u64, streams: bool) -> Result<Output, ToolError> {
    let mut held = Vec::new();
    let mut error = None;
    while (held.len() as u64) < count {
        match open_once(path, streams) {
            Ok(handle) => held.push(handle),
            Err(err) => {
                error = Some(err);
                break;
            }
        }
    }
    let opened = held.len();
    // Closing one must make room again.
    let reopened = error.is_some() && held.pop().is_some() && open_once(path, streams).is_ok();
    Ok(Output::text(
        json!({ "opened": opened, "error": error, "reopened": reopened }).to_string(),
    ))
}
