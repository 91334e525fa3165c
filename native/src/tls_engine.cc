// The server side of a data connection's TLS, on Node's own OpenSSL, driven from JS over a plain
// net.Socket (src/tls/native-socket.ts). Why it exists: Node's TLSSocket ends the same way after a
// close_notify and after a bare TCP FIN, so uploads needed a JS duplex (and Node's slow
// JSStreamSocket) between TCP and TLS; here SSL_ERROR_ZERO_RETURN says exactly when close_notify
// came. One JS call per TCP read decrypts it into one exact-size Buffer; one call per write
// encrypts into the caller's reused buffer through a sink BIO, with no OpenSSL-side buffer copy.
//
// Sessions resume exactly as on Node's TLSSocket: the same 48-byte ticket keys in Node's layout
// (16 name, 16 HMAC-SHA256, 16 AES-128-CBC; crypto_context.cc TicketCompatibilityCallback), the
// session id context of the control connection's binding, set per SSL, and the TLS 1.2 sessions
// the control connection recorded, looked up by id.
#include <napi.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Plaintext reads up to this size are copied into a plain Buffer rather than handed over.
constexpr size_t kCopyBelow = 16 * 1024;

constexpr napi_type_tag kContextTag = {0x5f3a9c1e2b7d4a60ULL, 0x8e41c2d7f09b3a15ULL};

// Ticket keys and the SSL_CTX they serve; owned by a JS External.
struct Context {
  SSL_CTX* ctx = nullptr;
  unsigned char ticketName[16];
  unsigned char ticketHmac[16];
  unsigned char ticketAes[16];
  ~Context() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
    OPENSSL_cleanse(ticketHmac, sizeof ticketHmac);
    OPENSSL_cleanse(ticketAes, sizeof ticketAes);
  }
};

int contextIndex = -1;
int engineIndex = -1;

std::string opensslErrors(const char* fallback) {
  std::string text;
  char line[256];
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    ERR_error_string_n(code, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? std::string(fallback) : text;
}

int ticketKeyCallback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  auto* context = static_cast<Context*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), contextIndex));
  if (context == nullptr) return -1;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, context->ticketHmac, sizeof context->ticketHmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (encrypt != 0) {
    std::memcpy(name, context->ticketName, sizeof context->ticketName);
    if (RAND_bytes(iv, 16) <= 0) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, context->ticketAes, iv) <= 0) return -1;
    return EVP_MAC_CTX_set_params(mac, params) <= 0 ? -1 : 1;
  }
  // A ticket under other keys (another gateway, or before a key change) is not an error: full handshake.
  if (std::memcmp(name, context->ticketName, sizeof context->ticketName) != 0) return 0;
  if (EVP_DecryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, context->ticketAes, iv) <= 0) return -1;
  return EVP_MAC_CTX_set_params(mac, params) <= 0 ? -1 : 1;
}

SSL_SESSION* knownSession(SSL* ssl, const unsigned char* id, int length, int* copy);
int newSession(SSL* ssl, SSL_SESSION* session);

// createContext(certPem, keyPem, ticketKeys[48], tls12Ciphers, tls13Suites, sessionTimeoutSeconds)
Napi::Value CreateContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsString() || !info[1].IsString() || !info[2].IsTypedArray() || !info[3].IsString() ||
      !info[4].IsString() || !info[5].IsNumber()) {
    Napi::TypeError::New(env, "createContext(cert, key, ticketKeys, ciphers, suites, timeout)").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto keys = info[2].As<Napi::Uint8Array>();
  if (keys.ByteLength() != 48) {
    Napi::RangeError::New(env, "ticket keys must be 48 bytes").ThrowAsJavaScriptException();
    return env.Null();
  }
  ERR_clear_error();
  auto* context = new Context();
  std::memcpy(context->ticketName, keys.Data(), 16);
  std::memcpy(context->ticketHmac, keys.Data() + 16, 16);
  std::memcpy(context->ticketAes, keys.Data() + 32, 16);
  auto fail = [&](const char* what) -> Napi::Value {
    std::string message = std::string(what) + ": " + opensslErrors("failed");
    delete context;
    Napi::Error::New(env, message).ThrowAsJavaScriptException();
    return env.Null();
  };
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return fail("SSL_CTX_new");
  context->ctx = ctx;
  SSL_CTX_set_ex_data(ctx, contextIndex, context);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  std::string ciphers = info[3].As<Napi::String>();
  std::string suites = info[4].As<Napi::String>();
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) return fail("cipher list");
  if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) return fail("cipher suites");
  std::string cert = info[0].As<Napi::String>();
  std::string key = info[1].As<Napi::String>();
  BIO* certBio = BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size()));
  X509* leaf = PEM_read_bio_X509_AUX(certBio, nullptr, nullptr, nullptr);
  bool certOk = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  // The rest of the file is the chain, as Node reads it.
  while (certOk) {
    X509* extra = PEM_read_bio_X509(certBio, nullptr, nullptr, nullptr);
    if (extra == nullptr) break;
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      certOk = false;
    }
  }
  BIO_free(certBio);
  ERR_clear_error();  // the chain loop ends on a "no start line" error
  if (!certOk) return fail("certificate");
  BIO* keyBio = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(keyBio, nullptr, nullptr, nullptr);
  BIO_free(keyBio);
  bool keyOk = pkey != nullptr && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(pkey);
  if (!keyOk) return fail("private key");
  SSL_CTX_set_timeout(ctx, static_cast<long>(info[5].As<Napi::Number>().Int64Value()));
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_get_cb(ctx, knownSession);
  SSL_CTX_sess_set_new_cb(ctx, newSession);
  if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback) != 1) return fail("ticket keys");
  auto external = Napi::External<Context>::New(env, context, [](Napi::Env, Context* owned) { delete owned; });
  external.TypeTag(&kContextTag);
  return external;
}

// The sink BIO: ciphertext goes straight into the caller's buffer during encrypt(), else (handshake
// flights, tickets, alerts) into `pending`, which is always sent first.
BIO_METHOD* sinkMethod = nullptr;
BIO_METHOD* sourceMethod = nullptr;

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&Engine::Receive>("receive"),
                           InstanceMethod<&Engine::ReceiveInto>("receiveInto"),
                           InstanceMethod<&Engine::Peek>("peek"),
                           InstanceMethod<&Engine::Encrypt>("encrypt"),
                           InstanceMethod<&Engine::TakeOutput>("takeOutput"),
                           InstanceMethod<&Engine::Shutdown>("shutdown"),
                           InstanceMethod<&Engine::State>("state"),
                           InstanceMethod<&Engine::Error>("error"),
                           InstanceMethod<&Engine::Protocol>("protocol"),
                           InstanceMethod<&Engine::Free>("free"),
                           InstanceMethod<&Engine::TakeNewSessions>("takeNewSessions"),
                       });
  }

  // new Engine(context, sessionIdContext, knownSessions: [{ id, data }], control?: boolean). A
  // control connection's engine records the sessions it makes (for its data connections) and gives
  // its record buffers back to OpenSSL while idle (SSL_MODE_RELEASE_BUFFERS, as Node's TLS does).
  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsString() || !info[2].IsArray()) {
      Napi::TypeError::New(env, "new Engine(context, sessionIdContext, knownSessions)").ThrowAsJavaScriptException();
      return;
    }
    auto external = info[0].As<Napi::External<Context>>();
    if (!external.CheckTypeTag(&kContextTag)) {
      Napi::TypeError::New(env, "not a TLS context").ThrowAsJavaScriptException();
      return;
    }
    contextRef_ = Napi::Persistent(info[0].As<Napi::Object>());
    std::string sidContext = info[1].As<Napi::String>();
    auto known = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < known.Length(); i += 1) {
      Napi::Value item = known.Get(i);
      if (!item.IsObject()) continue;
      Napi::Value id = item.As<Napi::Object>().Get("id");
      Napi::Value data = item.As<Napi::Object>().Get("data");
      if (!id.IsTypedArray() || !data.IsTypedArray()) continue;
      auto idBytes = id.As<Napi::Uint8Array>();
      auto dataBytes = data.As<Napi::Uint8Array>();
      known_.push_back({std::string(reinterpret_cast<const char*>(idBytes.Data()), idBytes.ByteLength()),
                        std::string(reinterpret_cast<const char*>(dataBytes.Data()), dataBytes.ByteLength())});
    }
    ERR_clear_error();
    ssl_ = SSL_new(external.Data()->ctx);
    if (ssl_ == nullptr || sidContext.size() > SSL_MAX_SID_CTX_LENGTH ||
        SSL_set_session_id_context(ssl_, reinterpret_cast<const unsigned char*>(sidContext.data()),
                                   static_cast<unsigned int>(sidContext.size())) != 1) {
      Napi::Error::New(env, "SSL_new: " + opensslErrors("failed")).ThrowAsJavaScriptException();
      return;
    }
    SSL_set_ex_data(ssl_, engineIndex, this);
    if (info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value()) {
      recordSessions_ = true;
      SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    }
    BIO* source = BIO_new(sourceMethod);
    BIO* sink = BIO_new(sinkMethod);
    BIO_set_data(source, this);
    BIO_set_data(sink, this);
    BIO_set_init(source, 1);
    BIO_set_init(sink, 1);
    SSL_set_bio(ssl_, source, sink);
    SSL_set_accept_state(ssl_);
  }

  ~Engine() override { Release(); }

  const std::vector<std::pair<std::string, std::string>>& known() const { return known_; }

  // Called by OpenSSL when it made a session (TLS 1.2) or issued a ticket (TLS 1.3).
  void NoteNewSession(SSL_SESSION* session) {
    if (!recordSessions_) return;
    int length = i2d_SSL_SESSION(session, nullptr);
    if (length <= 0) return;
    std::string data(static_cast<size_t>(length), '\0');
    auto* out = reinterpret_cast<unsigned char*>(data.data());
    if (i2d_SSL_SESSION(session, &out) != length) return;
    unsigned int idLength = 0;
    const unsigned char* id = SSL_SESSION_get_id(session, &idLength);
    newSessions_.push_back({std::string(reinterpret_cast<const char*>(id), idLength), std::move(data)});
  }

  // Called by the source BIO: copies up to `length` ciphertext bytes given by receive().
  size_t ReadInput(char* into, size_t length) {
    size_t available = inputLength_ - inputOffset_;
    size_t n = available < length ? available : length;
    if (n > 0) std::memcpy(into, inputData_ + inputOffset_, n);
    inputOffset_ += n;
    return n;
  }

  // Called by the sink BIO.
  void WriteOutput(const char* from, size_t length) {
    if (target_ != nullptr && !overflowed_ && targetLength_ - targetUsed_ >= length) {
      std::memcpy(target_ + targetUsed_, from, length);
      targetUsed_ += length;
      return;
    }
    // Once anything went to `pending` during this call, the rest must follow it there to keep order.
    if (target_ != nullptr) overflowed_ = true;
    pending_.insert(pending_.end(), from, from + length);
  }

 private:
  enum : uint32_t {
    kHandshakeDone = 1,
    kCloseNotify = 2,
    kFailed = 4,
    kSessionReused = 8,
    kOutputPending = 16,
    kNewSessions = 32,
  };

  bool Usable(Napi::Env env) {
    if (ssl_ != nullptr) return true;
    Napi::Error::New(env, "TLS engine already freed").ThrowAsJavaScriptException();
    return false;
  }

  void Fail(const char* fallback) {
    failed_ = true;
    if (error_.empty()) error_ = opensslErrors(fallback);
  }

  // receive(ciphertext | null) → Buffer of plaintext | null. Advances the handshake, then decrypts
  // every complete record; ciphertext of a record cut between TCP reads stays inside OpenSSL.
  Napi::Value Receive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Null();
    std::string stash;
    Napi::Value plain = env.Null();
    if (BeginInput(info, stash)) plain = ReadPlaintext(env);
    EndInput();
    return plain;
  }

  // receiveInto(ciphertext | null, out, offset) → plaintext bytes written at out[offset..]: the
  // upload's part buffer, so no Buffer is made per read. What does not fit stays for the next call.
  Napi::Value ReceiveInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Null();
    if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "receiveInto(ciphertext, out, offset)").ThrowAsJavaScriptException();
      return env.Null();
    }
    auto out = info[1].As<Napi::Uint8Array>();
    int64_t offset = info[2].As<Napi::Number>().Int64Value();
    if (offset < 0 || static_cast<size_t>(offset) > out.ByteLength()) {
      Napi::RangeError::New(env, "offset outside the buffer").ThrowAsJavaScriptException();
      return env.Null();
    }
    std::string stash;
    size_t filled = 0;
    if (BeginInput(info, stash)) filled = ReadInto(out.Data() + offset, out.ByteLength() - static_cast<size_t>(offset));
    EndInput();
    return Napi::Number::New(env, static_cast<double>(filled));
  }

  // peek(ciphertext | null) → whether plaintext is waiting, without taking it (close_notify and
  // failures show in state()).
  Napi::Value Peek(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Null();
    std::string stash;
    bool waiting = false;
    if (BeginInput(info, stash)) {
      unsigned char probe;
      size_t n = 0;
      int result = SSL_peek_ex(ssl_, &probe, 1, &n);
      if (result == 1) waiting = n > 0;
      else NoteReadResult(result);
    }
    EndInput();
    return Napi::Boolean::New(env, waiting);
  }

  // Sets up the input of one call (leftover first) and advances the handshake; true when
  // application data may be read.
  bool BeginInput(const Napi::CallbackInfo& info, std::string& stash) {
    if (info.Length() > 0 && info[0].IsTypedArray()) {
      auto input = info[0].As<Napi::Uint8Array>();
      if (!leftover_.empty()) {
        // Input is left when the caller's buffer was full (receiveInto), and it comes first.
        stash.swap(leftover_);
        stash.append(reinterpret_cast<const char*>(input.Data()), input.ByteLength());
        inputData_ = reinterpret_cast<const unsigned char*>(stash.data());
        inputLength_ = stash.size();
      } else {
        inputData_ = input.Data();
        inputLength_ = input.ByteLength();
      }
      inputOffset_ = 0;
    } else if (!leftover_.empty()) {
      stash.swap(leftover_);
      inputData_ = reinterpret_cast<const unsigned char*>(stash.data());
      inputLength_ = stash.size();
      inputOffset_ = 0;
    }
    ERR_clear_error();
    if (!failed_ && !closeNotify_ && !SSL_is_init_finished(ssl_)) {
      int result = SSL_do_handshake(ssl_);
      if (result != 1) {
        int code = SSL_get_error(ssl_, result);
        if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) Fail("TLS handshake failed");
      }
    }
    return !failed_ && !closeNotify_ && SSL_is_init_finished(ssl_);
  }

  // Keeps unread input for the next call.
  void EndInput() {
    if (inputOffset_ < inputLength_) leftover_.assign(reinterpret_cast<const char*>(inputData_ + inputOffset_), inputLength_ - inputOffset_);
    inputData_ = nullptr;
    inputLength_ = inputOffset_ = 0;
  }

  void NoteReadResult(int result) {
    int code = SSL_get_error(ssl_, result);
    if (code == SSL_ERROR_ZERO_RETURN) closeNotify_ = true;
    else if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) Fail("TLS read failed");
  }

  size_t ReadInto(unsigned char* data, size_t capacity) {
    size_t filled = 0;
    while (filled < capacity) {
      size_t n = 0;
      int result = SSL_read_ex(ssl_, data + filled, capacity - filled, &n);
      if (result == 1) {
        filled += n;
        continue;
      }
      NoteReadResult(result);
      break;
    }
    return filled;
  }

  Napi::Value ReadPlaintext(Napi::Env env) {
    // Plaintext is never longer than the ciphertext it came from, plus one record OpenSSL may have
    // buffered from the previous read.
    size_t capacity = (inputLength_ - inputOffset_) + SSL_pending(ssl_) + 16384 + 256;
    auto* data = static_cast<unsigned char*>(std::malloc(capacity));
    if (data == nullptr) {
      Fail("out of memory");
      return env.Null();
    }
    size_t filled = ReadInto(data, capacity);
    if (filled == 0) {
      std::free(data);
      return env.Null();
    }
    // Small reads (control commands, a download's acknowledgements) are copied into an ordinary
    // Buffer: an external one costs a finalizer per read and V8 collects those slowly, which held
    // megabytes of garbage during a burst of logins.
    if (filled <= kCopyBelow) {
      auto copy = Napi::Buffer<unsigned char>::Copy(env, data, filled);
      std::free(data);
      return copy;
    }
    // Shrinking in place: the Buffer is exactly the plaintext, without a copy.
    auto* exact = static_cast<unsigned char*>(std::realloc(data, filled));
    if (exact == nullptr) exact = data;
    return Napi::Buffer<unsigned char>::New(env, exact, filled, [](Napi::Env, unsigned char* owned) { std::free(owned); });
  }

  // encrypt(plaintext[], out) → bytes of ciphertext in `out`: pending handshake output first, then
  // the records of every chunk. The caller sizes `out` (see native-socket.ts) and reuses it.
  Napi::Value Encrypt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Null();
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsTypedArray()) {
      Napi::TypeError::New(env, "encrypt(chunks, out)").ThrowAsJavaScriptException();
      return env.Null();
    }
    auto chunks = info[0].As<Napi::Array>();
    auto out = info[1].As<Napi::Uint8Array>();
    target_ = out.Data();
    targetLength_ = out.ByteLength();
    targetUsed_ = 0;
    overflowed_ = false;
    if (!pending_.empty()) {
      if (pending_.size() > targetLength_) overflowed_ = true;
      else {
        std::memcpy(target_, pending_.data(), pending_.size());
        targetUsed_ = pending_.size();
        pending_.clear();
      }
    }
    ERR_clear_error();
    for (uint32_t i = 0; i < chunks.Length() && !failed_; i += 1) {
      Napi::Value item = chunks.Get(i);
      if (!item.IsTypedArray()) continue;
      auto chunk = item.As<Napi::Uint8Array>();
      if (chunk.ByteLength() == 0) continue;
      size_t written = 0;
      if (SSL_write_ex(ssl_, chunk.Data(), chunk.ByteLength(), &written) != 1 || written != chunk.ByteLength()) Fail("TLS write failed");
    }
    size_t used = targetUsed_;
    target_ = nullptr;
    targetLength_ = targetUsed_ = 0;
    if (failed_) {
      Napi::Error::New(env, error_).ThrowAsJavaScriptException();
      return env.Null();
    }
    return Napi::Number::New(env, static_cast<double>(used));
  }

  // takeOutput() → Buffer | null: ciphertext the engine produced on its own (handshake, alerts).
  Napi::Value TakeOutput(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (pending_.empty()) return env.Null();
    auto buffer = Napi::Buffer<unsigned char>::Copy(env, pending_.data(), pending_.size());
    pending_.clear();
    return buffer;
  }

  // shutdown(): queues our close_notify (taken by takeOutput()).
  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Null();
    ERR_clear_error();
    if (!failed_ && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    ERR_clear_error();
    return env.Undefined();
  }

  Napi::Value State(const Napi::CallbackInfo& info) {
    uint32_t state = 0;
    if (ssl_ != nullptr && SSL_is_init_finished(ssl_)) state |= kHandshakeDone;
    if (ssl_ != nullptr && SSL_session_reused(ssl_) == 1) state |= kSessionReused;
    if (closeNotify_) state |= kCloseNotify;
    if (failed_) state |= kFailed;
    if (!pending_.empty()) state |= kOutputPending;
    if (!newSessions_.empty()) state |= kNewSessions;
    return Napi::Number::New(info.Env(), state);
  }

  Napi::Value Error(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), error_); }

  Napi::Value Protocol(const Napi::CallbackInfo& info) {
    if (ssl_ == nullptr) return info.Env().Null();
    return Napi::String::New(info.Env(), SSL_get_version(ssl_));
  }

  // takeNewSessions() → [{ id, data }] | null: sessions made since the last call (control connections).
  Napi::Value TakeNewSessions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (newSessions_.empty()) return env.Null();
    auto list = Napi::Array::New(env, newSessions_.size());
    for (size_t i = 0; i < newSessions_.size(); i += 1) {
      auto record = Napi::Object::New(env);
      const auto& [id, data] = newSessions_[i];
      record.Set("id", Napi::Buffer<unsigned char>::Copy(env, reinterpret_cast<const unsigned char*>(id.data()), id.size()));
      record.Set("data", Napi::Buffer<unsigned char>::Copy(env, reinterpret_cast<const unsigned char*>(data.data()), data.size()));
      list.Set(static_cast<uint32_t>(i), record);
    }
    newSessions_.clear();
    return list;
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (!contextRef_.IsEmpty()) contextRef_.Reset();
    pending_.clear();
    pending_.shrink_to_fit();
    leftover_.clear();
    known_.clear();
    newSessions_.clear();
  }

  SSL* ssl_ = nullptr;
  Napi::ObjectReference contextRef_;
  std::vector<std::pair<std::string, std::string>> known_;
  const unsigned char* inputData_ = nullptr;
  size_t inputLength_ = 0;
  size_t inputOffset_ = 0;
  std::string leftover_;
  unsigned char* target_ = nullptr;
  size_t targetLength_ = 0;
  size_t targetUsed_ = 0;
  bool overflowed_ = false;
  std::vector<unsigned char> pending_;
  bool recordSessions_ = false;
  std::vector<std::pair<std::string, std::string>> newSessions_;
  bool closeNotify_ = false;
  bool failed_ = false;
  std::string error_;
};

SSL_SESSION* knownSession(SSL* ssl, const unsigned char* id, int length, int* copy) {
  *copy = 0;
  auto* engine = static_cast<Engine*>(SSL_get_ex_data(ssl, engineIndex));
  if (engine == nullptr || length < 0) return nullptr;
  for (const auto& [knownId, data] : engine->known()) {
    if (knownId.size() != static_cast<size_t>(length) || std::memcmp(knownId.data(), id, knownId.size()) != 0) continue;
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    // OpenSSL checks the session's id context against this SSL's before it resumes it.
    return d2i_SSL_SESSION(nullptr, &bytes, static_cast<long>(data.size()));
  }
  return nullptr;
}

int newSession(SSL* ssl, SSL_SESSION* session) {
  auto* engine = static_cast<Engine*>(SSL_get_ex_data(ssl, engineIndex));
  if (engine != nullptr) engine->NoteNewSession(session);
  return 0;  // not kept: OpenSSL frees its reference
}

int sourceRead(BIO* bio, char* into, size_t length, size_t* read) {
  auto* engine = static_cast<Engine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  size_t n = engine == nullptr ? 0 : engine->ReadInput(into, length);
  *read = n;
  if (n == 0) {
    BIO_set_retry_read(bio);
    return 0;
  }
  return 1;
}

int sinkWrite(BIO* bio, const char* from, size_t length, size_t* written) {
  auto* engine = static_cast<Engine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (engine == nullptr) return 0;
  engine->WriteOutput(from, length);
  *written = length;
  return 1;
}

long bioControl(BIO*, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

// allocateHugeBuffer(size) → Buffer | null: memory for upload part buffers, mapped on its own and
// advised as transparent huge pages. A fresh 8 MiB Buffer costs 2,048 page faults when first
// written, and in a virtual machine each is expensive (about 3 CPU-s per GiB here); with huge pages
// it is 4. null when the memory cannot be mapped (the caller allocates as usual).
constexpr size_t kHugePage = 2 * 1024 * 1024;

struct Mapping {
  void* base;
  size_t length;
};

Napi::Value AllocateHugeBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "allocateHugeBuffer(size)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int64_t requested = info[0].As<Napi::Number>().Int64Value();
  if (requested <= 0) return env.Null();
  size_t size = static_cast<size_t>(requested);
  // Room to start on a huge-page boundary.
  size_t length = size + kHugePage;
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return env.Null();
  auto address = reinterpret_cast<uintptr_t>(base);
  auto aligned = (address + kHugePage - 1) & ~(static_cast<uintptr_t>(kHugePage) - 1);
  size_t advised = (length - (aligned - address)) & ~(kHugePage - 1);
  madvise(reinterpret_cast<void*>(aligned), advised, MADV_HUGEPAGE);
  auto* mapping = new Mapping{base, length};
  auto buffer = Napi::Buffer<unsigned char>::New(
      env, reinterpret_cast<unsigned char*>(aligned), size,
      [](Napi::Env, unsigned char*, Mapping* owned) {
        munmap(owned->base, owned->length);
        delete owned;
      },
      mapping);
  return buffer;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Shared by every thread that loads the addon; set once, read-only afterwards.
  static bool initialised = [] {
    contextIndex = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    engineIndex = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    sourceMethod = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "s3ftpd source");
    BIO_meth_set_read_ex(sourceMethod, sourceRead);
    BIO_meth_set_ctrl(sourceMethod, bioControl);
    sinkMethod = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "s3ftpd sink");
    BIO_meth_set_write_ex(sinkMethod, sinkWrite);
    BIO_meth_set_ctrl(sinkMethod, bioControl);
    return true;
  }();
  (void)initialised;
  exports.Set("createContext", Napi::Function::New(env, CreateContext));
  exports.Set("Engine", Engine::Define(env));
  exports.Set("allocateHugeBuffer", Napi::Function::New(env, AllocateHugeBuffer));
  exports.Set("openssl", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  return exports;
}

}  // namespace

NODE_API_MODULE(s3ftpd_tls, Init)
