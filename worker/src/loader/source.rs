//! Which files make a model, where each is fetched from and what it must be: from a `.onnx` URL,
//! a Hugging Face model folder (`…/onnx/model.onnx` beside `model.onnx_data`,
//! `model.onnx_data_1`, …), or a [`Manifest`] listing every file with its size and sha256.
//! URL resolution is the caller's (the web layer uses the browser's URL parser).

use std::collections::HashMap;

use wick_shared::{ExternalFile, Manifest};

use super::Expected;
use crate::error::{Result, WickError};

/// Resolves `url` against `base` (None: the caller's default base) into an absolute URL.
pub type Resolve<'a> = &'a dyn Fn(&str, Option<&str>) -> Result<String>;

/// The files of one model.
#[derive(Debug, Default)]
pub struct Sources {
    /// The `.onnx` file.
    pub model_url: String,
    /// The URL the page named (the model, its folder or its manifest): the offline cache's name
    /// for the model.
    pub key: String,
    /// External-data `location` → URL, where the page said so.
    overrides: HashMap<String, String>,
    /// Absolute URL → what it must be.
    expected: HashMap<String, Expected>,
}

impl Sources {
    /// A model named by URL: a `.onnx` file, or a folder (ending in `/`) in the Hugging Face
    /// layout, whose model is `onnx/{graph}.onnx` or `onnx/{graph}_{variant}.onnx` (`graph` is
    /// `model` but for tasks made of several graphs).
    pub fn from_url(
        url: &str,
        graph: &str,
        variant: Option<&str>,
        sha256: Option<&str>,
        external: &[ExternalFile],
        resolve: Resolve,
    ) -> Result<Sources> {
        let key = resolve(url, None)?;
        let model_url = if key.ends_with('/') { resolve(&graph_file(graph, variant), Some(&key))? } else { key.clone() };
        let mut sources = Sources { model_url, key, ..Default::default() };
        sources.expected.insert(sources.model_url.clone(), Expected::new(None, sha256)?);
        sources.add_external(external, resolve)?;
        Ok(sources)
    }

    /// A model named by its manifest (already fetched from `manifest_url`).
    pub fn from_manifest(
        manifest_url: &str,
        manifest: &Manifest,
        external: &[ExternalFile],
        resolve: Resolve,
    ) -> Result<Sources> {
        let bad = |m: String| WickError::InvalidModel { file: Some(manifest_url.to_string()), message: m };
        if manifest.format != Manifest::FORMAT || manifest.version != 1 {
            return Err(bad(format!(
                "not a {} version 1 (format '{}', version {})",
                Manifest::FORMAT,
                manifest.format,
                manifest.version
            )));
        }
        let model_url = resolve(&manifest.model, Some(manifest_url))?;
        let mut sources = Sources { model_url, key: manifest_url.to_string(), ..Default::default() };
        for file in &manifest.files {
            let url = resolve(&file.path, Some(manifest_url))?;
            let expected = Expected::new(Some(file.size), file.sha256.as_deref())
                .map_err(|e| bad(format!("{}: {e}", file.path)))?;
            sources.expected.insert(url, expected);
        }
        sources.add_external(external, resolve)?;
        Ok(sources)
    }

    /// The same model's other graph `graph` (`onnx/{graph}[_{variant}].onnx` beside the folder
    /// or manifest): its external data is found relative to it, and what the manifest says of
    /// its files still holds.
    pub fn other_graph(&self, graph: &str, variant: Option<&str>, resolve: Resolve) -> Result<Sources> {
        if !self.key.ends_with('/') && self.key == self.model_url {
            return Err(WickError::BadRequest(format!(
                "this task reads several graphs ({graph} too): name the model's folder (ending in /) or its manifest, not one .onnx file"
            )));
        }
        let model_url = resolve(&graph_file(graph, variant), Some(&self.key))?;
        Ok(Sources { model_url, key: self.key.clone(), overrides: self.overrides.clone(), expected: self.expected.clone() })
    }

    fn add_external(&mut self, external: &[ExternalFile], resolve: Resolve) -> Result<()> {
        for file in external {
            let url = match &file.url {
                Some(url) => {
                    let url = resolve(url, None)?;
                    self.overrides.insert(file.path.clone(), url.clone());
                    url
                }
                None => resolve(&file.path, Some(&self.model_url))?,
            };
            if file.size.is_some() || file.sha256.is_some() {
                self.expected.insert(url, Expected::new(file.size, file.sha256.as_deref())?);
            }
        }
        Ok(())
    }

    /// Where the external-data file `location` (as the model names it) is fetched from.
    pub fn file_url(&self, location: &str, resolve: Resolve) -> Result<String> {
        match self.overrides.get(location) {
            Some(url) => Ok(url.clone()),
            None => resolve(location, Some(&self.model_url)),
        }
    }

    /// Where a file that comes with the model (`config.json`, …) is: at the root of the folder
    /// or beside the manifest, else beside the `.onnx` file.
    pub fn companion_url(&self, name: &str, resolve: Resolve) -> Result<String> {
        resolve(name, Some(&self.key))
    }

    /// What the file at `url` must be (nothing, if no one said).
    pub fn expected(&self, url: &str) -> Expected {
        self.expected.get(url).cloned().unwrap_or_default()
    }
}

/// `onnx/{graph}.onnx`, or `onnx/{graph}_{variant}.onnx`.
fn graph_file(graph: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("onnx/{graph}_{v}.onnx"),
        _ => format!("onnx/{graph}.onnx"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_shared::ManifestFile;

    /// Enough of URL resolution for these tests: absolute URLs stay, others join the base's
    /// folder.
    fn resolve(url: &str, base: Option<&str>) -> Result<String> {
        if url.contains("://") {
            return Ok(url.to_string());
        }
        let base = base.unwrap_or("https://site.test/app/");
        Ok(format!("{}{url}", &base[..=base.rfind('/').unwrap_or(0)]))
    }

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_folder_url_is_the_hugging_face_layout() {
        let s = Sources::from_url("https://hub.test/m/", "model", None, None, &[], &resolve).unwrap();
        assert_eq!(s.model_url, "https://hub.test/m/onnx/model.onnx");
        assert_eq!(s.key, "https://hub.test/m/");
        assert_eq!(s.file_url("model.onnx_data_1", &resolve).unwrap(), "https://hub.test/m/onnx/model.onnx_data_1");
        assert_eq!(s.companion_url("config.json", &resolve).unwrap(), "https://hub.test/m/config.json");
        let q4 = Sources::from_url("https://hub.test/m/", "model", Some("q4"), None, &[], &resolve).unwrap();
        assert_eq!(q4.model_url, "https://hub.test/m/onnx/model_q4.onnx");
    }

    #[test]
    fn a_task_of_several_graphs_finds_each_in_the_folder() {
        let decoder = Sources::from_url("https://hub.test/w/", "decoder", Some("q4"), None, &[], &resolve).unwrap();
        assert_eq!(decoder.model_url, "https://hub.test/w/onnx/decoder_q4.onnx");
        let encoder = decoder.other_graph("encoder", Some("q4"), &resolve).unwrap();
        assert_eq!(encoder.model_url, "https://hub.test/w/onnx/encoder_q4.onnx");
        assert_eq!(encoder.key, decoder.key);
        assert_eq!(encoder.file_url("encoder_q4.onnx_data", &resolve).unwrap(), "https://hub.test/w/onnx/encoder_q4.onnx_data");
        let single = Sources::from_url("https://hub.test/w/decoder.onnx", "decoder", None, None, &[], &resolve).unwrap();
        assert!(matches!(single.other_graph("encoder", None, &resolve), Err(WickError::BadRequest(_))));
    }

    #[test]
    fn external_data_entries_move_files_and_state_their_integrity() {
        let external = [
            ExternalFile { path: "w.bin".into(), url: Some("https://cdn.test/w.bin".into()), ..Default::default() },
            ExternalFile { path: "v.bin".into(), size: Some(3), sha256: Some(SHA.into()), ..Default::default() },
        ];
        let s = Sources::from_url("models/a.onnx", "model", None, Some(SHA), &external, &resolve).unwrap();
        assert_eq!(s.model_url, "https://site.test/app/models/a.onnx");
        assert_eq!(s.companion_url("config.json", &resolve).unwrap(), "https://site.test/app/models/config.json");
        assert_eq!(s.file_url("w.bin", &resolve).unwrap(), "https://cdn.test/w.bin");
        assert_eq!(s.file_url("v.bin", &resolve).unwrap(), "https://site.test/app/models/v.bin");
        assert_eq!(s.expected("https://site.test/app/models/v.bin").size, Some(3));
        assert!(s.expected(&s.model_url).sha256.is_some());
        assert_eq!(s.expected("https://cdn.test/w.bin"), Expected::default());
    }

    #[test]
    fn a_manifest_names_the_model_and_every_file() {
        let manifest = Manifest {
            format: Manifest::FORMAT.into(),
            version: 1,
            model: "onnx/model.onnx".into(),
            files: vec![
                ManifestFile { path: "onnx/model.onnx".into(), size: 10, sha256: None },
                ManifestFile { path: "onnx/model.onnx_data".into(), size: 3, sha256: Some(SHA.into()) },
            ],
        };
        let url = "https://hub.test/m/wick-manifest.json";
        let s = Sources::from_manifest(url, &manifest, &[], &resolve).unwrap();
        assert_eq!(s.key, url);
        assert_eq!(s.model_url, "https://hub.test/m/onnx/model.onnx");
        let data = s.file_url("model.onnx_data", &resolve).unwrap();
        assert_eq!(s.expected(&data).size, Some(3));
        assert_eq!(s.expected(&s.model_url).size, Some(10));
        assert_eq!(s.companion_url("config.json", &resolve).unwrap(), "https://hub.test/m/config.json");

        let wrong = Manifest { format: "other".into(), ..manifest.clone() };
        assert!(matches!(
            Sources::from_manifest(url, &wrong, &[], &resolve),
            Err(WickError::InvalidModel { .. })
        ));
        let mut bad_hash = manifest;
        bad_hash.files[1].sha256 = Some("xyz".into());
        assert!(Sources::from_manifest(url, &bad_hash, &[], &resolve).is_err());
    }
}
