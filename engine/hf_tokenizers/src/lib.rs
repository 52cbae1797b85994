//! Thin C ABI over the Hugging Face `tokenizers` crate; the contract is in
//! include/attattr_hf_tokenizers.h. Encoding follows the crate's own `encode` for a
//! transformers fast tokenizer with add_special_tokens=True and truncation="longest_first":
//! each text is encoded without special tokens, both are truncated together to
//! max_length minus the post-processor's added tokens, then post-processed.
//! Why this file exists: C++ cannot call the Rust API directly, and re-implementing BPE/Unigram
//! and their normalizers would be a second, unverified copy of the library.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tokenizers::models::ModelWrapper;
use tokenizers::utils::truncation::{
    truncate_encodings, TruncationDirection, TruncationParams, TruncationStrategy,
};
use tokenizers::{Encoding, PostProcessor, Tokenizer};

pub struct AttattrHfTokenizer {
    tokenizer: Tokenizer,
    continuing_prefix: Option<CString>,
}

pub struct AttattrHfEncoding {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    sequence_ids: Vec<i32>,
    offsets: Vec<usize>,
    tokens: Vec<String>,
}

#[repr(C)]
pub struct AttattrHfEncodingView {
    len: usize,
    ids: *const u32,
    type_ids: *const u32,
    sequence_ids: *const i32,
    offsets: *const usize,
}

fn set_error(error: *mut *mut c_char, message: String) {
    if error.is_null() {
        return;
    }
    let clean: String = message.replace('\0', " ");
    let c = CString::new(clean).unwrap_or_default();
    // SAFETY: the caller passes a valid pointer to a char* (checked non-null above).
    unsafe { *error = c.into_raw() };
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("tokenizer panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("tokenizer panicked: {s}")
    } else {
        "tokenizer panicked".to_string()
    }
}

/// # Safety
/// `json` points to `len` readable bytes; `error` is NULL or a writable char**.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_from_json(
    json: *const c_char,
    len: usize,
    error: *mut *mut c_char,
) -> *mut AttattrHfTokenizer {
    if json.is_null() {
        set_error(error, "no tokenizer.json bytes".to_string());
        return std::ptr::null_mut();
    }
    let bytes = std::slice::from_raw_parts(json as *const u8, len);
    let result = catch_unwind(AssertUnwindSafe(|| Tokenizer::from_bytes(bytes)));
    match result {
        Ok(Ok(mut tokenizer)) => {
            let _ = tokenizer.with_truncation(None);
            tokenizer.with_padding(None);
            if let Err(m) = check_model(&tokenizer) {
                set_error(error, m);
                return std::ptr::null_mut();
            }
            let continuing_prefix = match tokenizer.get_model() {
                ModelWrapper::WordPiece(wp) => CString::new(wp.continuing_subword_prefix.clone()).ok(),
                _ => None,
            };
            Box::into_raw(Box::new(AttattrHfTokenizer { tokenizer, continuing_prefix }))
        }
        Ok(Err(e)) => {
            set_error(error, e.to_string());
            std::ptr::null_mut()
        }
        Err(p) => {
            set_error(error, panic_message(p));
            std::ptr::null_mut()
        }
    }
}

/// The longest word WordPiece may be asked to split: its search is cubic in the word's length, so a
/// tokenizer.json's own bound (100 in every released BERT) may not lift it.
const MAX_WORDPIECE_CHARS_PER_WORD: usize = 1000;

/// Settings a tokenizer.json may carry that make tokenization unbounded or random.
fn check_model(t: &Tokenizer) -> Result<(), String> {
    match t.get_model() {
        ModelWrapper::WordPiece(wp) if wp.max_input_chars_per_word > MAX_WORDPIECE_CHARS_PER_WORD => {
            Err(format!(
                "model.max_input_chars_per_word {} is above {MAX_WORDPIECE_CHARS_PER_WORD}",
                wp.max_input_chars_per_word
            ))
        }
        ModelWrapper::BPE(bpe) if bpe.dropout.is_some_and(|p| p > 0.0) => {
            Err("model.dropout is set: BPE dropout makes tokenization random".to_string())
        }
        _ => Ok(()),
    }
}

/// # Safety
/// `tokenizer` is NULL or came from attattr_hf_tokenizer_from_json and is not used after.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_free(tokenizer: *mut AttattrHfTokenizer) {
    if !tokenizer.is_null() {
        drop(Box::from_raw(tokenizer));
    }
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_model_type(
    tokenizer: *const AttattrHfTokenizer,
) -> *const c_char {
    let name: &'static [u8] = match (&*tokenizer).tokenizer.get_model() {
        ModelWrapper::BPE(_) => b"BPE\0",
        ModelWrapper::WordPiece(_) => b"WordPiece\0",
        ModelWrapper::WordLevel(_) => b"WordLevel\0",
        ModelWrapper::Unigram(_) => b"Unigram\0",
    };
    name.as_ptr() as *const c_char
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_continuing_prefix(
    tokenizer: *const AttattrHfTokenizer,
) -> *const c_char {
    match &(&*tokenizer).continuing_prefix {
        Some(p) => p.as_ptr(),
        None => std::ptr::null(),
    }
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_vocab_size(
    tokenizer: *const AttattrHfTokenizer,
) -> usize {
    let t = &(&*tokenizer).tokenizer;
    // The largest id + 1: added tokens may reuse or extend the model's ids.
    let model = t.get_vocab_size(false);
    let added = t.get_added_tokens_decoder().keys().map(|&id| id as usize + 1).max().unwrap_or(0);
    model.max(added)
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_distinct_ids(
    tokenizer: *const AttattrHfTokenizer,
) -> usize {
    let ids: std::collections::HashSet<u32> =
        (&*tokenizer).tokenizer.get_vocab(true).into_values().collect();
    ids.len()
}

/// # Safety
/// `tokenizer` is live; `token` points to `len` readable bytes; `id` is writable.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_token_to_id(
    tokenizer: *const AttattrHfTokenizer,
    token: *const c_char,
    len: usize,
    id: *mut u32,
) -> i32 {
    if token.is_null() {
        return 0;
    }
    let bytes = std::slice::from_raw_parts(token as *const u8, len);
    let Ok(s) = std::str::from_utf8(bytes) else { return 0 };
    match (&*tokenizer).tokenizer.token_to_id(s) {
        Some(v) => {
            *id = v;
            1
        }
        None => 0,
    }
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_id_to_token(
    tokenizer: *const AttattrHfTokenizer,
    id: u32,
) -> *mut c_char {
    match (&*tokenizer).tokenizer.id_to_token(id) {
        Some(s) => CString::new(s.replace('\0', " ")).map(|c| c.into_raw()).unwrap_or(std::ptr::null_mut()),
        None => std::ptr::null_mut(),
    }
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_is_special(
    tokenizer: *const AttattrHfTokenizer,
    id: u32,
) -> i32 {
    let t = &(&*tokenizer).tokenizer;
    match t.get_added_vocabulary().get_added_tokens_decoder().get(&id) {
        Some(tok) if tok.special => 1,
        _ => 0,
    }
}

/// # Safety
/// `tokenizer` is a live tokenizer.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_added_tokens(
    tokenizer: *const AttattrHfTokenizer,
    pair: i32,
) -> usize {
    added_tokens(&(&*tokenizer).tokenizer, pair != 0)
}

fn added_tokens(t: &Tokenizer, pair: bool) -> usize {
    t.get_post_processor().map(|p| p.added_tokens(pair)).unwrap_or(0)
}

fn encode(
    t: &Tokenizer,
    text: &str,
    pair: Option<&str>,
    max_length: usize,
) -> Result<AttattrHfEncoding, String> {
    let specials = added_tokens(t, pair.is_some());
    let segments = if pair.is_some() { 2 } else { 1 };
    if max_length < specials + segments {
        return Err(format!(
            "max_length {max_length} cannot hold the {specials} special tokens and one token of each text"
        ));
    }
    let a: Encoding = without_sequences(t.encode(text, false).map_err(|e| e.to_string())?);
    let b: Option<Encoding> = pair
        .map(|p| t.encode(p, false).map(without_sequences))
        .transpose()
        .map_err(|e| e.to_string())?;
    let params = TruncationParams {
        direction: TruncationDirection::Right,
        max_length: max_length - specials,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    };
    let (a, b) = truncate_encodings(a, b, &params).map_err(|e| e.to_string())?;
    let e = t.post_process(a, b, true).map_err(|e| e.to_string())?;
    if e.len() > max_length {
        // A template that names a sequence twice repeats it (the crate does not refuse one read
        // from JSON): the positions would run past the model's.
        return Err(format!(
            "the tokenizer's post-processor made {} tokens of at most {max_length} (does its \
             template repeat a sequence?)",
            e.len()
        ));
    }
    let sequence_ids =
        e.get_sequence_ids().iter().map(|s| s.map(|v| v as i32).unwrap_or(-1)).collect();
    let mut offsets = Vec::with_capacity(e.len() * 2);
    for &(begin, end) in e.get_offsets() {
        offsets.push(begin);
        offsets.push(end);
    }
    Ok(AttattrHfEncoding {
        ids: e.get_ids().to_vec(),
        type_ids: e.get_type_ids().to_vec(),
        sequence_ids,
        offsets,
        tokens: e.get_tokens().to_vec(),
    })
}

// `encode(text, false)` already ran the post-processor without special tokens, which marked the
// whole encoding as sequence 0; the real post-processing below must assign the sequences afresh
// (the crate's private encode_single_sequence, which transformers reaches, never marks them).
fn without_sequences(e: Encoding) -> Encoding {
    Encoding::new(
        e.get_ids().to_vec(),
        e.get_type_ids().to_vec(),
        e.get_tokens().to_vec(),
        e.get_word_ids().to_vec(),
        e.get_offsets().to_vec(),
        e.get_special_tokens_mask().to_vec(),
        e.get_attention_mask().to_vec(),
        Vec::new(),
        Default::default(),
    )
}

unsafe fn utf8_arg<'a>(p: *const c_char, len: usize, name: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return if len == 0 { Ok("") } else { Err(format!("{name}: NULL with {len} bytes")) };
    }
    let bytes = std::slice::from_raw_parts(p as *const u8, len);
    std::str::from_utf8(bytes)
        .map_err(|e| format!("{name}: not UTF-8 (invalid byte at offset {})", e.valid_up_to()))
}

/// # Safety
/// `tokenizer` is live; `text`/`pair` point to their lengths' readable bytes (`pair` may be NULL
/// for a single text); `error` is NULL or a writable char**.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_tokenizer_encode(
    tokenizer: *const AttattrHfTokenizer,
    text: *const c_char,
    text_len: usize,
    pair: *const c_char,
    pair_len: usize,
    max_length: usize,
    error: *mut *mut c_char,
) -> *mut AttattrHfEncoding {
    let run = || -> Result<AttattrHfEncoding, String> {
        let a = utf8_arg(text, text_len, "text")?;
        let b = if pair.is_null() { None } else { Some(utf8_arg(pair, pair_len, "text_pair")?) };
        encode(&(&*tokenizer).tokenizer, a, b, max_length)
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(e)) => Box::into_raw(Box::new(e)),
        Ok(Err(m)) => {
            set_error(error, m);
            std::ptr::null_mut()
        }
        Err(p) => {
            set_error(error, panic_message(p));
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `encoding` is live.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_encoding_view(
    encoding: *const AttattrHfEncoding,
) -> AttattrHfEncodingView {
    let e = &*encoding;
    AttattrHfEncodingView {
        len: e.ids.len(),
        ids: e.ids.as_ptr(),
        type_ids: e.type_ids.as_ptr(),
        sequence_ids: e.sequence_ids.as_ptr(),
        offsets: e.offsets.as_ptr(),
    }
}

/// # Safety
/// `encoding` is live, `i` < its length, `len` is writable.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_encoding_token(
    encoding: *const AttattrHfEncoding,
    i: usize,
    len: *mut usize,
) -> *const c_char {
    let t = &(&*encoding).tokens[i];
    *len = t.len();
    t.as_ptr() as *const c_char
}

/// # Safety
/// `encoding` is NULL or came from attattr_hf_tokenizer_encode and is not used after.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_encoding_free(encoding: *mut AttattrHfEncoding) {
    if !encoding.is_null() {
        drop(Box::from_raw(encoding));
    }
}

/// # Safety
/// `s` is NULL or a string this library handed out, not used after.
#[no_mangle]
pub unsafe extern "C" fn attattr_hf_string_free(s: *mut c_char) {
    if !s.is_null() {
        drop(CString::from_raw(s));
    }
}
