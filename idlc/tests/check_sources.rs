//! `idlc::check_sources`: sources held in memory, imports resolved only
//! among the given names, the file system never read.

fn sources(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect()
}

#[test]
fn names_may_start_with_parent_dirs() {
    let set = sources(&[
        (
            "svc.rpc",
            "package svc;\nimport \"../lib/mid.rpc\";\nservice S {\n  mid.M get();\n}\n",
        ),
        (
            "../lib/mid.rpc",
            "package mid;\nimport \"base.rpc\";\nstruct M {\n  1: base.B b;\n}\n",
        ),
        (
            "../lib/base.rpc",
            "package base;\nstruct B {\n  1: u32 x;\n}\n",
        ),
    ]);
    let checked = idlc::check_sources(&set, &["svc.rpc"]).expect("the sources check");
    let names: Vec<&str> = checked.files.iter().map(|f| f.idl_name.as_str()).collect();
    assert_eq!(names, ["svc.rpc", "../lib/mid.rpc", "../lib/base.rpc"]);
    assert!(checked.files_read.iter().all(|p| !p.is_absolute()));
}

#[test]
fn an_absolute_import_resolves_to_its_file_name() {
    let set = sources(&[
        (
            "svc.rpc",
            "package svc;\nimport \"/home/someone/idl/money.rpc\";\nservice S {\n  money.Money get();\n}\n",
        ),
        (
            "money.rpc",
            "package money;\nstruct Money {\n  1: u64 cents;\n}\n",
        ),
    ]);
    let checked = idlc::check_sources(&set, &["svc.rpc"]).expect("the sources check");
    assert_eq!(checked.files.len(), 2);
    assert_eq!(checked.files[1].idl_name, "money.rpc");
}

#[test]
fn imports_outside_the_names_never_reach_the_file_system() {
    // A real file on this machine, imported by absolute and by relative
    // path: neither may be read.
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.rpc");
    std::fs::write(&secret, "package secret;\nstruct Leak {\n  1: u32 x;\n}\n").expect("write");
    let relative = format!("../../../../../../../..{}", secret.display());
    for import in [secret.display().to_string(), relative] {
        let text =
            format!("package svc;\nimport \"{import}\";\nservice S {{\n  secret.Leak get();\n}}\n");
        let set = sources(&[("svc.rpc", text.as_str())]);
        let errors = idlc::check_sources(&set, &["svc.rpc"]).expect_err("unresolved");
        let rendered = errors.render();
        assert!(rendered.contains("cannot import"), "{rendered}");
        assert!(!rendered.contains("struct Leak"), "{rendered}");
    }
}

#[test]
fn a_missing_root_is_an_error() {
    let errors = idlc::check_sources(&[], &["nothing.rpc"]).expect_err("missing");
    assert!(
        errors.render().contains("nothing.rpc"),
        "{}",
        errors.render()
    );
}
