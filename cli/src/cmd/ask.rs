//! `sextant ask "question" [--file F]... [--tokens N]`: answers a question
//! about the repository. The prompt holds a repo map (focused on the --file
//! files and on identifiers the question mentions) plus the --file contents;
//! the answer streams to stdout, token usage goes to stderr at the end, and
//! the exchange is saved to the session history (so `sextant usage` counts it).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sextant_core::config::{self, ProviderKind, Purpose};
use sextant_core::providers::{self, ChatRequest, ChatResponse, Message, Provider, ProviderError, StreamEvent};
use sextant_core::repomap::{self, IndexOptions, MapRequest, RepoMap};
use sextant_core::sessions::SessionStore;
use sextant_core::tokens;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// The question to ask.
    pub question: String,
    /// A file to include in full (and to focus the repo map on). Repeatable.
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Token budget of the repo map in the prompt (default: 2048, or 256
    /// with the small embedded model).
    #[arg(long)]
    pub tokens: Option<usize>,
    /// Most tokens the answer may have (default: `max_tokens` of the
    /// configuration, else the provider's own limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    /// Repository root (default: the enclosing git repository, else the current directory).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Exit code after Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;

const SYSTEM_PROMPT: &str = "You are Sextant, a coding assistant answering questions about a code repository. \
You are given a map of the repository (file paths with the signatures of their most relevant definitions) and \
the full text of some files. Answer the question using them; name the files and symbols you rely on. If the \
context does not contain the answer, say what is missing instead of guessing. Be concise.";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = match &args.root {
        Some(root) => root.clone(),
        None => repository_root(&cwd),
    };
    anyhow::ensure!(root.is_dir(), "{} is not a directory", root.display());
    let config = config::load(Some(&root))?;
    super::warn_config_notes(&config);
    let budget = PromptBudget::for_provider(config.resolve(Purpose::Chat).kind, args.tokens);

    let mut files = Vec::new();
    for path in &args.files {
        let contents =
            std::fs::read_to_string(path).with_context(|| format!("cannot read --file {}", path.display()))?;
        files.push((workspace_relative(&root, &cwd, path), contents));
    }

    // Loading the embedded model and indexing are CPU/disk-bound: keep them
    // off the async runtime, and do both at once.
    let max_tokens = args.max_tokens.or(config.max_tokens);
    let provider_task = tokio::task::spawn_blocking(move || providers::build(&config, Purpose::Chat));
    let map_root = root.clone();
    let map_task = tokio::task::spawn_blocking(move || {
        let options = IndexOptions { cache_dir: repomap::default_cache_dir(&map_root) };
        repomap::load_or_build(&map_root, &options, &|_| {})
    });
    let provider = provider_task.await.context("the provider task failed")?.map_err(explain_provider_error)?;
    let index = map_task.await.context("the indexing task failed")??;
    if let Some(warning) = &index.cache_warning {
        tracing::warn!("repo map cache: {warning}");
    }

    let map_request = MapRequest {
        focus_files: files.iter().map(|(path, _)| path.clone()).collect(),
        mentioned_idents: mentioned_identifiers(&args.question, &index.map),
        token_budget: budget.map_tokens,
        include_focus_files: false,
    };
    let map = index.map.render(&map_request);
    let files = fit_files(&files, &args.question, budget.file_tokens);
    let mut request = build_request(&args.question, &map.text, &files);
    request.max_tokens = max_tokens;
    if std::io::stderr().is_terminal() {
        // A small local model can take a while to read the prompt before the
        // first word appears: say that something is happening.
        let prompt_tokens: usize = request.messages.iter().map(|m| tokens::count(&m.content)).sum();
        eprintln!("thinking… ({prompt_tokens} prompt tokens)");
    }
    let (code, response) = stream_answer(provider.clone(), &request).await?;
    if let Some(response) = response {
        let workspace = root.canonicalize().unwrap_or(root).display().to_string();
        let saved = tokio::task::spawn_blocking(move || {
            record_session(&workspace, &args.question, provider.as_ref(), &request, &response)
        })
        .await;
        // The answer is already printed: a history that cannot be written is worth a warning, not a failure.
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("warning: the answer was not saved to the session history: {err}"),
            Err(err) => eprintln!("warning: the answer was not saved to the session history: {err}"),
        }
    }
    Ok(code)
}

/// Stores the exchange and its token usage (shown by `sextant usage` / `sextant sessions`).
fn record_session(
    workspace: &str,
    question: &str,
    provider: &dyn Provider,
    request: &ChatRequest,
    response: &ChatResponse,
) -> anyhow::Result<()> {
    let store = SessionStore::open_default()?;
    let title: String = question.chars().take(80).collect();
    let session = store.create_session(workspace, &title, provider.name(), provider.model())?;
    for message in &request.messages {
        store.append_message(&session, message)?;
    }
    store.append_message(&session, &response.message)?;
    store.record_usage(&session, provider.name(), provider.model(), response.usage)?;
    Ok(())
}

/// Streams the answer to stdout; Ctrl-C cancels the request. Returns the
/// exit code and, when the model answered in full, its response.
async fn stream_answer(
    provider: Arc<dyn Provider>,
    request: &ChatRequest,
) -> anyhow::Result<(ExitCode, Option<ChatResponse>)> {
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    let interrupt_watch = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    // Not `.lock()`: the sink must be `Send`, and a stdout lock is not.
    let mut stdout = std::io::stdout();
    let mut ends_with_newline = true;
    let mut write_error: Option<std::io::Error> = None;
    let result = provider
        .chat(
            request,
            &mut |event| {
                if let StreamEvent::TextDelta(text) = event {
                    if write_error.is_none() {
                        if let Err(err) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                            // stdout closed (e.g. piped into `head`): stop asking for more.
                            write_error = Some(err);
                            cancel.cancel();
                        }
                    }
                    if !text.is_empty() {
                        ends_with_newline = text.ends_with('\n');
                    }
                }
            },
            &cancel,
        )
        .await;
    interrupt_watch.abort();
    if !ends_with_newline && write_error.is_none() {
        let _ = writeln!(stdout);
    }
    if let Some(err) = write_error {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok((ExitCode::SUCCESS, None));
        }
        return Err(err).context("cannot write the answer to stdout");
    }
    match result {
        Ok(response) => {
            eprintln!(
                "tokens: {} in, {} out ({} {})",
                response.usage.input_tokens,
                response.usage.output_tokens,
                provider.name(),
                provider.model()
            );
            Ok((ExitCode::SUCCESS, Some(response)))
        }
        Err(ProviderError::Cancelled) => {
            eprintln!("interrupted");
            Ok((ExitCode::from(EXIT_INTERRUPTED), None))
        }
        Err(ProviderError::Http { provider: name, status: 404, message }) if name == "ollama" => Err(anyhow::anyhow!(
            "ollama returned HTTP 404: {message}\nIs the model pulled? Run `ollama pull {}`.",
            provider.model()
        )),
        Err(err) => Err(explain_provider_error(err)),
    }
}

/// Adds what to do next to errors whose fix is a command away.
fn explain_provider_error(err: ProviderError) -> anyhow::Error {
    match &err {
        ProviderError::Connect { provider, .. } if provider == "ollama" => {
            anyhow::anyhow!("{err}\nIs Ollama running? Start it with `ollama serve`, or set OLLAMA_HOST.")
        }
        _ => anyhow::Error::new(err),
    }
}

/// The nearest ancestor of `start` holding a `.git`, else `start` itself.
fn repository_root(start: &Path) -> PathBuf {
    start.ancestors().find(|dir| dir.join(".git").exists()).unwrap_or(start).to_path_buf()
}

/// `path` relative to `root` with `/` separators (as the repo map names
/// files); paths outside the root are kept as given.
fn workspace_relative(root: &Path, cwd: &Path, path: &Path) -> String {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) };
    let absolute = absolute.canonicalize().unwrap_or(absolute);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    match absolute.strip_prefix(&root) {
        Ok(relative) => relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
        Err(_) => path.display().to_string(),
    }
}

/// Words of the question that name a definition in the repository
/// (`compute_total`, `RepoMap`, …), in order of appearance, without duplicates.
fn mentioned_identifiers(question: &str, map: &RepoMap) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let words = question.split(|c: char| !(c.is_alphanumeric() || c == '_'));
    for word in words {
        let word = word.trim_matches(|c: char| c.is_ascii_digit());
        if word.len() < 3 || found.iter().any(|w| w == word) {
            continue;
        }
        if !map.definitions(word).is_empty() {
            found.push(word.to_string());
        }
    }
    found
}

/// How much of the prompt the repo map and the --file contents may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PromptBudget {
    map_tokens: usize,
    /// Shared by all --file files.
    file_tokens: usize,
}

impl PromptBudget {
    /// The embedded model reads prompts at tens of tokens per second on a
    /// laptop CPU and has a small context: keep its whole prompt near 1.2k
    /// tokens. Remote models get a generous map and whole files. An explicit
    /// `--tokens` always sets the map budget.
    fn for_provider(kind: ProviderKind, requested_map_tokens: Option<usize>) -> Self {
        let (default_map, file_tokens) = match kind {
            ProviderKind::Embedded => (256, 768),
            ProviderKind::OpenAi | ProviderKind::Anthropic | ProviderKind::Ollama => (2048, usize::MAX),
        };
        PromptBudget { map_tokens: requested_map_tokens.unwrap_or(default_map), file_tokens }
    }
}

/// The --file contents cut to `budget` tokens in all (an equal share each,
/// a file under its share leaving the rest to the others). A file over its
/// share keeps the lines around the most relevant one (see [`anchor_line`])
/// and gets a note saying which lines are shown.
fn fit_files(files: &[(String, String)], question: &str, budget: usize) -> Vec<(String, String)> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| tokens::count(&files[i].1));
    let mut remaining = budget;
    let mut fitted = vec![String::new(); files.len()];
    for (position, &index) in order.iter().enumerate() {
        let share = remaining / (files.len() - position);
        let text = excerpt_around_relevant_lines(&files[index].1, question, share);
        remaining = remaining.saturating_sub(tokens::count(&text));
        fitted[index] = text;
    }
    files.iter().zip(fitted).map(|((path, _), text)| (path.clone(), text)).collect()
}

/// `contents` when within `max_tokens`; otherwise a run of whole lines
/// grown around [`anchor_line`] while it fits, plus a note.
fn excerpt_around_relevant_lines(contents: &str, question: &str, max_tokens: usize) -> String {
    if tokens::count(contents) <= max_tokens {
        return contents.to_string();
    }
    let lines: Vec<&str> = contents.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    // Room for the note; each line costs its text plus one line break.
    let budget = max_tokens.saturating_sub(40);
    let cost: Vec<usize> = lines.iter().map(|line| tokens::count(line) + 1).collect();
    let anchor = anchor_line(&lines, question);
    let (mut first, mut last) = (anchor, anchor);
    let mut used = cost[anchor];
    if used > budget {
        return format!("[… {} lines cut to fit the model's context …]", lines.len());
    }
    // Grow mostly downwards (a definition's body follows its signature),
    // taking one line above for every two below.
    let mut step = 0usize;
    loop {
        let can_down = last + 1 < lines.len() && used + cost[last + 1] <= budget;
        let can_up = first > 0 && used + cost[first - 1] <= budget;
        if !can_down && !can_up {
            break;
        }
        let go_up = can_up && (!can_down || step % 3 == 2);
        if go_up {
            first -= 1;
            used += cost[first];
        } else {
            last += 1;
            used += cost[last];
        }
        step += 1;
    }
    let render = |first: usize, last: usize| {
        format!(
            "[… lines {}-{} of {} shown, cut to fit the model's context …]\n{}",
            first + 1,
            last + 1,
            lines.len(),
            lines[first..=last].join("\n")
        )
    };
    // The estimate per line is close, not exact: drop far lines until it fits.
    let mut excerpt = render(first, last);
    while tokens::count(&excerpt) > max_tokens && last > first {
        if last > anchor {
            last -= 1;
        } else {
            first += 1;
        }
        excerpt = render(first, last);
    }
    excerpt
}

/// The line most worth showing for `question`: the first that defines a
/// word of the question (`fn count`, `struct Ledger`, `def parse`…), else the
/// first that mentions one, else the first line.
fn anchor_line(lines: &[&str], question: &str) -> usize {
    let words: Vec<&str> = question
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.len() >= 3 && !word.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let is_word_at = |line: &str, start: usize, word: &str| {
        let before = line[..start].chars().next_back();
        let after = line[start + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    };
    const DEFINERS: [&str; 12] =
        ["fn", "struct", "enum", "trait", "type", "def", "class", "function", "func", "interface", "const", "mod"];
    let defines = |line: &str| {
        words.iter().any(|word| {
            line.match_indices(word).any(|(start, _)| {
                is_word_at(line, start, word) && {
                    let keyword = line[..start].trim_end().rsplit(|c: char| !c.is_alphanumeric()).next();
                    keyword.is_some_and(|k| DEFINERS.contains(&k))
                }
            })
        })
    };
    let mentions =
        |line: &str| words.iter().any(|word| line.match_indices(word).any(|(start, _)| is_word_at(line, start, word)));
    lines.iter().position(|line| defines(line)).or_else(|| lines.iter().position(|line| mentions(line))).unwrap_or(0)
}

/// The chat request: system prompt, then one user message with the map,
/// the files and the question.
fn build_request(question: &str, map_text: &str, files: &[(String, String)]) -> ChatRequest {
    let mut user = String::new();
    if !map_text.trim().is_empty() {
        user.push_str(&format!("Repository map:\n```\n{}\n```\n\n", map_text.trim_end()));
    }
    for (path, contents) in files {
        user.push_str(&format!("File `{path}`:\n```\n{}\n```\n\n", contents.trim_end()));
    }
    user.push_str(&format!("Question: {question}"));
    ChatRequest { messages: vec![Message::system(SYSTEM_PROMPT), Message::user(user)], ..ChatRequest::default() }
}

#[cfg(test)]
mod tests {
    use sextant_core::repomap::SourceFile;

    use super::*;

    #[test]
    fn identifiers_are_words_the_map_defines() {
        let (map, _) = RepoMap::build(vec![SourceFile::new(
            "src/lib.rs",
            b"pub fn compute_total(x: u32) -> u32 { x }\npub struct Ledger;\n".to_vec(),
        )]);
        let found =
            mentioned_identifiers("What does `compute_total` do with a Ledger? And compute_total again, the fn?", &map);
        assert_eq!(found, vec!["compute_total", "Ledger"]);
    }

    #[test]
    fn request_holds_map_files_and_question() {
        let request = build_request("Why?", "src/a.rs:\n│fn a()\n", &[("src/b.rs".into(), "fn b() {}\n".into())]);
        assert_eq!(request.messages.len(), 2);
        assert_eq!(
            request.messages[1].content,
            "Repository map:\n```\nsrc/a.rs:\n│fn a()\n```\n\nFile `src/b.rs`:\n```\nfn b() {}\n```\n\nQuestion: Why?"
        );
        let empty_map = build_request("Why?", "  \n", &[]);
        assert_eq!(empty_map.messages[1].content, "Question: Why?");
    }

    #[test]
    fn embedded_model_gets_small_budgets_unless_told_otherwise() {
        let embedded = PromptBudget::for_provider(ProviderKind::Embedded, None);
        assert_eq!(embedded, PromptBudget { map_tokens: 256, file_tokens: 768 });
        assert_eq!(PromptBudget::for_provider(ProviderKind::Embedded, Some(900)).map_tokens, 900);
        let remote = PromptBudget::for_provider(ProviderKind::OpenAi, None);
        assert_eq!(remote, PromptBudget { map_tokens: 2048, file_tokens: usize::MAX });
        assert_eq!(PromptBudget::for_provider(ProviderKind::Ollama, Some(64)).map_tokens, 64);
    }

    #[test]
    fn long_files_keep_the_lines_around_the_asked_definition() {
        let mut source = String::new();
        for i in 0..300 {
            source.push_str(&format!("pub fn helper_{i}(x: u32) -> u32 {{ x + {i} }}\n"));
        }
        source.push_str("/// Counts tokens.\npub fn count(text: &str) -> usize {\n    text.len()\n}\n");
        for i in 300..600 {
            source.push_str(&format!("pub fn helper_{i}(x: u32) -> u32 {{ x + {i} }}\n"));
        }
        let fitted = fit_files(&[("src/tokens.rs".into(), source.clone())], "What does tokens::count do?", 300);
        let text = &fitted[0].1;
        assert!(tokens::count(text) <= 300, "{} tokens", tokens::count(text));
        assert!(text.starts_with("[… lines "), "{text}");
        assert!(text.contains("pub fn count(text: &str) -> usize {\n    text.len()\n}"), "{text}");
        assert!(text.contains("/// Counts tokens."), "{text}");
        // Files within the budget are kept whole.
        let small = fit_files(&[("a.rs".into(), "fn a() {}\n".into())], "what?", 300);
        assert_eq!(small[0].1, "fn a() {}\n");
    }

    #[test]
    fn files_share_the_budget_and_short_files_leave_room_to_long_ones() {
        let long: String = (0..400).map(|i| format!("let value_{i} = {i};\n")).collect();
        let files = vec![("long.rs".to_string(), long.clone()), ("short.rs".to_string(), "fn s() {}\n".to_string())];
        let fitted = fit_files(&files, "what is value_200?", 400);
        assert_eq!(fitted[1], files[1]);
        let total: usize = fitted.iter().map(|(_, text)| tokens::count(text)).sum();
        assert!(total <= 400 && total > 300, "{total} tokens");
        assert!(fitted[0].1.contains("let value_200 = 200;"), "{}", fitted[0].1);
        // Without any relevant line the excerpt starts at the top.
        let top = fit_files(&[("long.rs".into(), long)], "why?", 100);
        assert!(top[0].1.contains("[… lines 1-"), "{}", top[0].1);
    }

    #[test]
    fn paths_are_made_workspace_relative() {
        let root = Path::new("/nonexistent/repo");
        assert_eq!(workspace_relative(root, root, Path::new("src/lib.rs")), "src/lib.rs");
        assert_eq!(workspace_relative(root, &root.join("src"), Path::new("lib.rs")), "src/lib.rs");
        assert_eq!(workspace_relative(root, root, Path::new("/elsewhere/x.rs")), "/elsewhere/x.rs");
    }
}
