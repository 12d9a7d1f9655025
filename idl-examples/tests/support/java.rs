//! The Java side: `tests/java/CuratorInterop.java`, compiled once per test
//! run with `javac` against Debian's Curator jars (installed by
//! `scripts/ensure-curator`) into a directory under the target directory's
//! tmp, and run with `java`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::zookeeper::java;

/// The jars the program compiles and runs against: Curator's discovery
/// recipe and what it needs (Debian's libcurator-discovery-java and its
/// dependencies). `COURIER_CURATOR_CLASSPATH` overrides the list.
const JARS: [&str; 10] = [
    "/usr/share/java/curator-x-discovery.jar",
    "/usr/share/java/curator-framework.jar",
    "/usr/share/java/curator-client.jar",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
    "/usr/share/java/guava.jar",
    "/usr/share/java/slf4j-api.jar",
];
/// A logger for the program's run, so ZooKeeper's and Curator's warnings
/// reach stderr (at warn level) instead of slf4j's "no binding" notice.
const LOGGER_JAR: &str = "/usr/share/java/slf4j-simple.jar";

const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/java/CuratorInterop.java"
);
const MAIN_CLASS: &str = "CuratorInterop";

/// The compiled Java Curator client.
pub struct Curator {
    classpath: String,
}

/// The compiled program; compiles it on first use. Fails the test with a
/// clear message if Java, javac or the Curator jars are missing, or if it
/// does not compile.
pub fn curator() -> &'static Curator {
    static CURATOR: OnceLock<Result<Curator, String>> = OnceLock::new();
    match CURATOR.get_or_init(compile) {
        Ok(curator) => curator,
        Err(message) => panic!("{message}"),
    }
}

impl Curator {
    /// `java ... CuratorInterop ARGS`, ready to spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(java());
        command
            .args([
                "-Xmx64m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.logFile=System.err",
                "-cp",
                &self.classpath,
                MAIN_CLASS,
            ])
            .args(args);
        command
    }
}

fn compile() -> Result<Curator, String> {
    let jars = match std::env::var("COURIER_CURATOR_CLASSPATH") {
        Ok(classpath) => classpath,
        Err(_) => {
            let missing: Vec<&str> = JARS
                .iter()
                .copied()
                .filter(|jar| !Path::new(jar).exists())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "Apache Curator is not installed ({} missing): run scripts/ensure-curator \
                     (installs Debian's libcurator-discovery-java)",
                    missing.join(", ")
                ));
            }
            JARS.join(":")
        }
    };
    let classes = classes_dir()?;
    let javac = std::env::var_os("JAVAC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("javac"));
    let output = Command::new(&javac)
        .args(["-nowarn", "-encoding", "UTF-8", "-d"])
        .arg(&classes)
        .args(["-cp", &jars, SOURCE])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| {
            format!(
                "cannot run {} ({error}): the Curator interop test needs a JDK \
                 (Java 17: java and javac on PATH, or $JAVA and $JAVAC)",
                javac.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "javac could not compile {SOURCE} against {jars} ({}):\n{}{}\n\
             (run scripts/ensure-curator if a Curator class is missing)",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    let mut classpath = format!("{}:{jars}", classes.display());
    if Path::new(LOGGER_JAR).exists() {
        classpath.push(':');
        classpath.push_str(LOGGER_JAR);
    }
    Ok(Curator { classpath })
}

/// A fresh directory for this test process's classes, under the target
/// directory's tmp; directories left by test processes that are gone are
/// removed first (a static is never dropped, so ours stays until the next
/// run cleans it).
fn classes_dir() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("curator-interop");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let classes = root.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&classes);
    std::fs::create_dir_all(&classes)
        .map_err(|error| format!("cannot create {}: {error}", classes.display()))?;
    Ok(classes)
}
