// Real-Qt peer for the qshm_compat interop tests, in C++ (Qt 5.15 or Qt 6.4).
//
// Built by interop_fixtures/build.sh as peer-qt5 and peer-qt6. The peer speaks the JSON-lines
// protocol described in interop_fixtures/PROTOCOL.md on stdin and stdout. It owns at most one
// QSharedMemory and one QSystemSemaphore and does exactly what each request says with Qt's own
// API. It holds no test logic. Diagnostics go to stderr only; stdout carries nothing but protocol
// lines.
//
// QNativeIpcKey (Qt >= 6.6) is not used: the requests that need it (`ipckey`, `native` with a
// `type`, `sem_native`, `parse`) answer "unsupported", and `keyinfo` gives only `shmNativeKey`.
//
// With QT_QPA_PLATFORM set (the tests use "offscreen") the application is a QGuiApplication, as
// the Shared Memory Example's is; otherwise a QCoreApplication (QImage works in both).

#include <QBuffer>
#include <QCoreApplication>
#include <QCryptographicHash>
#include <QDataStream>
#include <QDir>
#include <QElapsedTimer>
#include <QGuiApplication>
#include <QHash>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>
#include <QSharedMemory>
#include <QString>
#include <QSystemSemaphore>
#include <QVariant>
#include <QtEndian>
#include <QtGlobal>

#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>

namespace {

// Thrown by a request the peer cannot do; answered as {"ok": false, "unsupported": why}.
struct Unsupported
{
    QString why;
};

double unixTime()
{
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ----- arguments ---------------------------------------------------------------------------

bool has(const QJsonObject &req, const char *name)
{
    return req.contains(QLatin1String(name));
}

QJsonValue required(const QJsonObject &req, const char *name)
{
    if (!has(req, name))
        throw Unsupported{QStringLiteral("bad argument: missing '%1'").arg(QLatin1String(name))};
    return req.value(QLatin1String(name));
}

Unsupported wrongType(const char *name)
{
    return Unsupported{QStringLiteral("bad argument: '%1' has the wrong type").arg(QLatin1String(name))};
}

qint64 toInt(const QJsonValue &v, const char *name)
{
    if (!v.isDouble())
        throw wrongType(name);
    const double d = v.toDouble();
    // Integral and exactly representable (|d| < 2^53).
    if (d != static_cast<double>(static_cast<qint64>(d)) || d > 9007199254740992.0 || d < -9007199254740992.0)
        throw wrongType(name);
    return static_cast<qint64>(d);
}

qint64 argInt(const QJsonObject &req, const char *name)
{
    return toInt(required(req, name), name);
}

qint64 argInt(const QJsonObject &req, const char *name, qint64 fallback)
{
    return has(req, name) ? argInt(req, name) : fallback;
}

// An integer argument that must fit the Qt parameter type T.
template <typename T>
T narrow(qint64 v, const char *name)
{
    if (v < qint64(std::numeric_limits<T>::min()) || v > qint64(std::numeric_limits<T>::max()))
        throw Unsupported{QStringLiteral("bad argument: '%1' is out of range").arg(QLatin1String(name))};
    return T(v);
}

QString argString(const QJsonObject &req, const char *name)
{
    const QJsonValue v = required(req, name);
    if (!v.isString())
        throw wrongType(name);
    return v.toString();
}

QString argString(const QJsonObject &req, const char *name, const QString &fallback)
{
    return has(req, name) ? argString(req, name) : fallback;
}

bool argBool(const QJsonObject &req, const char *name, bool fallback)
{
    if (!has(req, name))
        return fallback;
    const QJsonValue v = req.value(QLatin1String(name));
    if (!v.isBool())
        throw wrongType(name);
    return v.toBool();
}

QStringList argStringList(const QJsonObject &req, const char *name)
{
    const QJsonValue v = required(req, name);
    if (!v.isArray())
        throw wrongType(name);
    QStringList out;
    const QJsonArray array = v.toArray();
    for (const QJsonValue &item : array) {
        if (!item.isString())
            throw Unsupported{QStringLiteral("bad argument: '%1' must be a list of strings").arg(QLatin1String(name))};
        out << item.toString();
    }
    return out;
}

QByteArray argHex(const QJsonObject &req, const char *name)
{
    const QString hex = argString(req, name);
    if (hex.size() % 2 != 0)
        throw Unsupported{QStringLiteral("bad argument: '%1' is not hex").arg(QLatin1String(name))};
    for (const QChar c : hex) {
        const bool digit = (c >= QLatin1Char('0') && c <= QLatin1Char('9'))
                || (c >= QLatin1Char('a') && c <= QLatin1Char('f'))
                || (c >= QLatin1Char('A') && c <= QLatin1Char('F'));
        if (!digit)
            throw Unsupported{QStringLiteral("bad argument: '%1' is not hex").arg(QLatin1String(name))};
    }
    return QByteArray::fromHex(hex.toLatin1());
}

QJsonValue jsonSize(qint64 n)
{
    return QJsonValue(double(n));
}

// image_get gives the RGBA8888 pixels as hex up to this many bytes, and always their sha1.
const int maxPixelHex = 65536;

QJsonValue typeNameOf(const QVariant &v)
{
    const char *name = v.typeName();
    return name && *name ? QJsonValue(QString::fromLatin1(name)) : QJsonValue(QJsonValue::Null);
}

// The bytes `write(out)` puts in a QBuffer through a QDataStream of `version` (-1: Qt's default).
QByteArray streamOut(const std::function<void(QDataStream &)> &write, int version, int *usedVersion,
                     int *status)
{
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    QDataStream out(&buffer);
    if (version >= 0)
        out.setVersion(version);
    write(out);
    *usedVersion = out.version();
    *status = int(out.status());
    buffer.close();
    return bytes;
}

// width, height, format and the pixels converted to RGBA8888, row by row without padding.
void imagePixels(const QImage &image, QJsonObject &o)
{
    o[QStringLiteral("width")] = image.width();
    o[QStringLiteral("height")] = image.height();
    o[QStringLiteral("format")] = int(image.format());
    o[QStringLiteral("isNull")] = image.isNull();
    QByteArray pixels;
    if (!image.isNull()) {
        const QImage rgba = image.convertToFormat(QImage::Format_RGBA8888);
        for (int y = 0; y < rgba.height(); ++y)
            pixels.append(reinterpret_cast<const char *>(rgba.constScanLine(y)), rgba.width() * 4);
    }
    if (pixels.size() <= maxPixelHex)
        o[QStringLiteral("rgba")] = QString::fromLatin1(pixels.toHex());
    o[QStringLiteral("rgbaSha1")] = QString::fromLatin1(
            QCryptographicHash::hash(pixels, QCryptographicHash::Sha1).toHex());
}

// ----- the peer ----------------------------------------------------------------------------

class Peer
{
public:
    QJsonObject readyLine() const;
    QJsonObject handleLine(const std::string &line);
    void shutdown()
    {
        sem.reset();
        destroyShm();
    }
    bool exiting = false;

private:
    using Handler = QJsonObject (Peer::*)(const QJsonObject &);
    static const QHash<QString, Handler> &handlers();

    void destroyShm()
    {
        shm.reset();
        readonlyAttach = false;
    }
    QJsonObject keyFields() const;
    uchar *segment(bool writable, qint64 offset, qint64 *length);
    QJsonObject publish(const QByteArray &payload, bool fallback);
    bool fetch(QJsonObject &o, const std::function<void(const QByteArray &)> &decode);
    void detachFirst()
    {
        if (shm->isAttached()) {
            shm->detach();
            readonlyAttach = false;
        }
    }

    static Unsupported needsNativeIpcKey(const char *what)
    {
        return Unsupported{QStringLiteral("%1 needs QNativeIpcKey (Qt >= 6.6), this is Qt %2")
                                   .arg(QLatin1String(what), QLatin1String(qVersion()))};
    }
    static QSharedMemory::AccessMode accessMode(bool readonly)
    {
        return readonly ? QSharedMemory::ReadOnly : QSharedMemory::ReadWrite;
    }
    static QSystemSemaphore::AccessMode semMode(const QJsonObject &req);

    QJsonObject cmdKey(const QJsonObject &req);
    QJsonObject cmdNative(const QJsonObject &req);
    QJsonObject cmdIpcKey(const QJsonObject &req);
    QJsonObject cmdCreate(const QJsonObject &req);
    QJsonObject cmdAttach(const QJsonObject &req);
    QJsonObject cmdDetach(const QJsonObject &req);
    QJsonObject cmdLock(const QJsonObject &req);
    QJsonObject cmdUnlock(const QJsonObject &req);
    QJsonObject cmdState(const QJsonObject &req);
    QJsonObject cmdRead(const QJsonObject &req);
    QJsonObject cmdWrite(const QJsonObject &req);
    QJsonObject cmdIncr(const QJsonObject &req);
    QJsonObject cmdBenchLock(const QJsonObject &req);
    QJsonObject cmdBenchAttach(const QJsonObject &req);
    QJsonObject cmdDestroy(const QJsonObject &req);
    QJsonObject cmdImagePut(const QJsonObject &req);
    QJsonObject cmdImageGet(const QJsonObject &req);
    QJsonObject cmdVariantPut(const QJsonObject &req);
    QJsonObject cmdVariantGet(const QJsonObject &req);
    QJsonObject cmdSemOpen(const QJsonObject &req);
    QJsonObject cmdSemNative(const QJsonObject &req);
    QJsonObject cmdSemAcquire(const QJsonObject &req);
    QJsonObject cmdSemRelease(const QJsonObject &req);
    QJsonObject cmdSemDestroy(const QJsonObject &req);
    QJsonObject cmdKeyInfo(const QJsonObject &req);
    QJsonObject cmdParse(const QJsonObject &req);
    QJsonObject cmdExit(const QJsonObject &req);

    std::unique_ptr<QSharedMemory> shm;
    std::unique_ptr<QSystemSemaphore> sem;
    bool readonlyAttach = false; // mode of the last successful create/attach
};

// Requests on the shared memory / the semaphore; their answers carry error() and errorString().
const QStringList shmCmds = {
    QStringLiteral("key"), QStringLiteral("native"), QStringLiteral("ipckey"), QStringLiteral("create"),
    QStringLiteral("attach"), QStringLiteral("detach"), QStringLiteral("lock"), QStringLiteral("unlock"),
    QStringLiteral("state"), QStringLiteral("read"), QStringLiteral("write"), QStringLiteral("incr"),
    QStringLiteral("bench_lock"), QStringLiteral("bench_attach"), QStringLiteral("destroy"),
    QStringLiteral("image_put"), QStringLiteral("image_get"), QStringLiteral("variant_put"),
    QStringLiteral("variant_get"),
};
// The shared memory requests that make a new object rather than needing one.
const QStringList shmMakers = {QStringLiteral("key"), QStringLiteral("native"), QStringLiteral("ipckey")};
const QStringList semCmds = {
    QStringLiteral("sem_open"), QStringLiteral("sem_native"), QStringLiteral("sem_acquire"),
    QStringLiteral("sem_release"), QStringLiteral("sem_destroy"),
};
#if QT_VERSION >= QT_VERSION_CHECK(6, 0, 0)
using SizeType = qsizetype; // QSharedMemory::create(qsizetype)
#else
using SizeType = int; // QSharedMemory::create(int)
#endif

const QStringList semMakers = {QStringLiteral("sem_open"), QStringLiteral("sem_native")};

const QHash<QString, Peer::Handler> &Peer::handlers()
{
    static const QHash<QString, Handler> table = {
        {QStringLiteral("key"), &Peer::cmdKey},
        {QStringLiteral("native"), &Peer::cmdNative},
        {QStringLiteral("ipckey"), &Peer::cmdIpcKey},
        {QStringLiteral("create"), &Peer::cmdCreate},
        {QStringLiteral("attach"), &Peer::cmdAttach},
        {QStringLiteral("detach"), &Peer::cmdDetach},
        {QStringLiteral("lock"), &Peer::cmdLock},
        {QStringLiteral("unlock"), &Peer::cmdUnlock},
        {QStringLiteral("state"), &Peer::cmdState},
        {QStringLiteral("read"), &Peer::cmdRead},
        {QStringLiteral("write"), &Peer::cmdWrite},
        {QStringLiteral("incr"), &Peer::cmdIncr},
        {QStringLiteral("bench_lock"), &Peer::cmdBenchLock},
        {QStringLiteral("bench_attach"), &Peer::cmdBenchAttach},
        {QStringLiteral("destroy"), &Peer::cmdDestroy},
        {QStringLiteral("image_put"), &Peer::cmdImagePut},
        {QStringLiteral("image_get"), &Peer::cmdImageGet},
        {QStringLiteral("variant_put"), &Peer::cmdVariantPut},
        {QStringLiteral("variant_get"), &Peer::cmdVariantGet},
        {QStringLiteral("sem_open"), &Peer::cmdSemOpen},
        {QStringLiteral("sem_native"), &Peer::cmdSemNative},
        {QStringLiteral("sem_acquire"), &Peer::cmdSemAcquire},
        {QStringLiteral("sem_release"), &Peer::cmdSemRelease},
        {QStringLiteral("sem_destroy"), &Peer::cmdSemDestroy},
        {QStringLiteral("keyinfo"), &Peer::cmdKeyInfo},
        {QStringLiteral("parse"), &Peer::cmdParse},
        {QStringLiteral("exit"), &Peer::cmdExit},
    };
    return table;
}

QJsonObject Peer::readyLine() const
{
    QJsonObject o;
    o[QStringLiteral("ready")] = true;
    o[QStringLiteral("stack")] = QStringLiteral("cpp-qt%1").arg(QT_VERSION_MAJOR);
    o[QStringLiteral("qt")] = QString::fromLatin1(qVersion());
    o[QStringLiteral("pid")] = double(QCoreApplication::applicationPid());
    o[QStringLiteral("tempPath")] = QDir::tempPath();
    o[QStringLiteral("datastreamVersion")] = QDataStream().version();
    o[QStringLiteral("nativeIpcKey")] = false; // this peer never uses QNativeIpcKey
    return o;
}

QJsonObject Peer::handleLine(const std::string &line)
{
    QJsonObject answer;
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(
            QByteArray(line.data(), int(line.size())), &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        answer[QStringLiteral("ok")] = false;
        answer[QStringLiteral("unsupported")] = QStringLiteral("bad json: ") + parseError.errorString();
        return answer;
    }
    const QJsonObject req = doc.object();
    if (!doc.isObject() || !req.value(QStringLiteral("cmd")).isString()) {
        answer[QStringLiteral("ok")] = false;
        answer[QStringLiteral("unsupported")] = QStringLiteral("bad request: not an object with a string cmd");
        return answer;
    }
    const QString cmd = req.value(QStringLiteral("cmd")).toString();
    const Handler handler = handlers().value(cmd, nullptr);
    if (!handler) {
        answer[QStringLiteral("ok")] = false;
        answer[QStringLiteral("unsupported")] = QStringLiteral("unknown command: ") + cmd;
        return answer;
    }
    try {
        if (shmCmds.contains(cmd) && !shmMakers.contains(cmd) && !shm)
            throw Unsupported{QStringLiteral("no shm object")};
        if (semCmds.contains(cmd) && !semMakers.contains(cmd) && !sem)
            throw Unsupported{QStringLiteral("no sem object")};
        answer = (this->*handler)(req);
    } catch (const Unsupported &u) {
        answer = QJsonObject();
        answer[QStringLiteral("ok")] = false;
        answer[QStringLiteral("unsupported")] = u.why;
    }
    if (shmCmds.contains(cmd) && shm) {
        answer[QStringLiteral("error")] = int(shm->error());
        answer[QStringLiteral("errorString")] = shm->errorString();
    } else if (semCmds.contains(cmd) && sem) {
        answer[QStringLiteral("error")] = int(sem->error());
        answer[QStringLiteral("errorString")] = sem->errorString();
    }
    return answer;
}

QJsonObject Peer::keyFields() const
{
    QJsonObject o;
    o[QStringLiteral("key")] = shm->key();
    o[QStringLiteral("nativeKey")] = shm->nativeKey();
    return o;
}

// Pointer into data()/constData() at offset, after checking the range against size(). A *length
// of -1 means "to the end" and is filled in.
uchar *Peer::segment(bool writable, qint64 offset, qint64 *length)
{
    const qint64 size = shm->size();
    if (!shm->isAttached() || size <= 0 || !shm->constData())
        throw Unsupported{QStringLiteral("not attached")};
    if (writable && readonlyAttach)
        throw Unsupported{QStringLiteral("attached read-only")};
    if (*length == -1)
        *length = size - offset;
    if (offset < 0 || *length < 0 || offset + *length > size)
        throw Unsupported{QStringLiteral("range %1+%2 is outside the segment (size %3)")
                                  .arg(offset).arg(*length).arg(size)};
    // constData() for reads, data() for writes, as the protocol says.
    const uchar *base = writable ? static_cast<const uchar *>(shm->data())
                                 : static_cast<const uchar *>(shm->constData());
    return const_cast<uchar *>(base) + offset;
}

QSystemSemaphore::AccessMode Peer::semMode(const QJsonObject &req)
{
    const QString mode = argString(req, "mode", QStringLiteral("open"));
    if (mode == QLatin1String("open"))
        return QSystemSemaphore::Open;
    if (mode == QLatin1String("create"))
        return QSystemSemaphore::Create;
    throw Unsupported{QStringLiteral("bad argument: mode '%1'").arg(mode)};
}

// ----- shared memory requests --------------------------------------------------------------

QJsonObject Peer::cmdKey(const QJsonObject &req)
{
    const QString key = argString(req, "key");
    destroyShm();
    shm.reset(new QSharedMemory(key));
    QJsonObject o = keyFields();
    o[QStringLiteral("ok")] = true;
    return o;
}

QJsonObject Peer::cmdNative(const QJsonObject &req)
{
    const QString native = argString(req, "native");
    if (has(req, "type"))
        throw needsNativeIpcKey("native with a type");
    destroyShm();
    shm.reset(new QSharedMemory());
    shm->setNativeKey(native);
    QJsonObject o = keyFields();
    o[QStringLiteral("ok")] = true;
    return o;
}

QJsonObject Peer::cmdIpcKey(const QJsonObject &)
{
    throw needsNativeIpcKey("ipckey");
}

QJsonObject Peer::cmdCreate(const QJsonObject &req)
{
    const SizeType size = narrow<SizeType>(argInt(req, "size"), "size");
    const bool readonly = argBool(req, "readonly", false);
    const bool ok = shm->create(size, accessMode(readonly));
    if (ok)
        readonlyAttach = readonly;
    QJsonObject o;
    o[QStringLiteral("ok")] = ok;
    o[QStringLiteral("size")] = jsonSize(shm->size());
    return o;
}

QJsonObject Peer::cmdAttach(const QJsonObject &req)
{
    const bool readonly = argBool(req, "readonly", false);
    const bool ok = shm->attach(accessMode(readonly));
    if (ok)
        readonlyAttach = readonly;
    QJsonObject o;
    o[QStringLiteral("ok")] = ok;
    o[QStringLiteral("size")] = jsonSize(shm->size());
    return o;
}

QJsonObject Peer::cmdDetach(const QJsonObject &)
{
    QJsonObject o;
    o[QStringLiteral("ok")] = shm->detach();
    return o;
}

QJsonObject Peer::cmdLock(const QJsonObject &)
{
    QJsonObject o;
    o[QStringLiteral("ok")] = shm->lock();
    return o;
}

QJsonObject Peer::cmdUnlock(const QJsonObject &)
{
    QJsonObject o;
    o[QStringLiteral("ok")] = shm->unlock();
    return o;
}

QJsonObject Peer::cmdState(const QJsonObject &)
{
    QJsonObject o = keyFields();
    o[QStringLiteral("ok")] = true;
    o[QStringLiteral("size")] = jsonSize(shm->size());
    o[QStringLiteral("isAttached")] = shm->isAttached();
    return o;
}

QJsonObject Peer::cmdRead(const QJsonObject &req)
{
    const qint64 offset = argInt(req, "offset", 0);
    qint64 length = argInt(req, "length", -1);
    if (has(req, "length") && length < 0)
        throw Unsupported{QStringLiteral("bad argument: negative length")};
    const uchar *p = segment(false, offset, &length);
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    o[QStringLiteral("hex")] = QString::fromLatin1(
            QByteArray(reinterpret_cast<const char *>(p), int(length)).toHex());
    return o;
}

QJsonObject Peer::cmdWrite(const QJsonObject &req)
{
    const QByteArray bytes = argHex(req, "hex");
    const qint64 offset = argInt(req, "offset", 0);
    qint64 length = bytes.size();
    uchar *p = segment(true, offset, &length);
    if (length > 0)
        std::memcpy(p, bytes.constData(), size_t(length));
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    return o;
}

QJsonObject Peer::cmdIncr(const QJsonObject &req)
{
    const qint64 count = argInt(req, "count");
    const qint64 offset = argInt(req, "offset", 0);
    double startAt = 0;
    const bool hasStart = has(req, "start_at");
    if (hasStart) {
        const QJsonValue v = req.value(QStringLiteral("start_at"));
        if (!v.isDouble())
            throw wrongType("start_at");
        startAt = v.toDouble();
    }
    qint64 four = 4;
    uchar *cell = segment(true, offset, &four);

    if (hasStart) {
        const double delay = startAt - unixTime();
        if (delay > 0)
            std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    }
    qint64 done = 0;
    quint32 value = 0;
    const double started = unixTime();
    QElapsedTimer timer;
    timer.start();
    for (qint64 i = 0; i < count; ++i) {
        if (!shm->lock())
            break;
        value = qFromLittleEndian<quint32>(cell) + 1;
        qToLittleEndian<quint32>(value, cell);
        ++done;
        if (!shm->unlock())
            break;
    }
    const double elapsed = double(timer.nsecsElapsed()) / 1e9;
    const double finished = unixTime();

    QJsonObject o;
    o[QStringLiteral("ok")] = done == count;
    o[QStringLiteral("done")] = double(done);
    o[QStringLiteral("value")] = done > 0 ? QJsonValue(double(value)) : QJsonValue(QJsonValue::Null);
    o[QStringLiteral("elapsed")] = elapsed;
    o[QStringLiteral("started")] = started;
    o[QStringLiteral("finished")] = finished;
    return o;
}

QJsonObject Peer::cmdBenchLock(const QJsonObject &req)
{
    const qint64 n = argInt(req, "n");
    qint64 done = 0;
    QElapsedTimer timer;
    timer.start();
    for (qint64 i = 0; i < n; ++i) {
        if (!shm->lock() || !shm->unlock())
            break;
        ++done;
    }
    const double elapsed = double(timer.nsecsElapsed()) / 1e9;
    QJsonObject o;
    o[QStringLiteral("ok")] = done == n;
    o[QStringLiteral("done")] = double(done);
    o[QStringLiteral("elapsed")] = elapsed;
    return o;
}

QJsonObject Peer::cmdBenchAttach(const QJsonObject &req)
{
    const qint64 n = argInt(req, "n");
    const QSharedMemory::AccessMode mode = accessMode(argBool(req, "readonly", false));
    qint64 done = 0;
    QElapsedTimer timer;
    timer.start();
    for (qint64 i = 0; i < n; ++i) {
        if (!shm->attach(mode) || !shm->detach())
            break;
        ++done;
    }
    const double elapsed = double(timer.nsecsElapsed()) / 1e9;
    QJsonObject o;
    o[QStringLiteral("ok")] = done == n;
    o[QStringLiteral("done")] = double(done);
    o[QStringLiteral("elapsed")] = elapsed;
    return o;
}

QJsonObject Peer::cmdDestroy(const QJsonObject &)
{
    destroyShm();
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    return o;
}

// ----- QDataStream requests: the Shared Memory Example, and QVariant ---------------------

// create(payload size) (with `fallback`, on AlreadyExists attach() as the 6.8 example does), lock,
// copy min(size(), payload size) bytes, unlock.
QJsonObject Peer::publish(const QByteArray &payload, bool fallback)
{
    QJsonObject o;
    o[QStringLiteral("ok")] = false;
    o[QStringLiteral("size")] = jsonSize(payload.size());
    o[QStringLiteral("created")] = false;
    const bool created = shm->create(SizeType(payload.size()));
    if (!created
        && (!fallback || shm->error() != QSharedMemory::AlreadyExists || !shm->attach())) {
        o[QStringLiteral("segmentSize")] = jsonSize(shm->size());
        return o;
    }
    readonlyAttach = false;
    o[QStringLiteral("created")] = created;
    o[QStringLiteral("segmentSize")] = jsonSize(shm->size());
    if (!shm->lock())
        return o;
    const qint64 n = qMin<qint64>(shm->size(), payload.size());
    if (n > 0)
        std::memcpy(shm->data(), payload.constData(), size_t(n));
    o[QStringLiteral("ok")] = shm->unlock();
    return o;
}

// attach(), lock(), decode a copy of the segment under the lock, unlock(), detach(). False when
// nothing was decoded.
bool Peer::fetch(QJsonObject &o, const std::function<void(const QByteArray &)> &decode)
{
    o[QStringLiteral("ok")] = false;
    if (!shm->attach())
        return false;
    readonlyAttach = false;
    o[QStringLiteral("size")] = jsonSize(shm->size());
    if (!shm->lock()) {
        shm->detach();
        return false;
    }
    // What QBuffer::setData(constData(), size()) copies in the example.
    const QByteArray data(static_cast<const char *>(shm->constData()), int(shm->size()));
    decode(data);
    const bool unlocked = shm->unlock();
    o[QStringLiteral("ok")] = unlocked && shm->detach();
    return true;
}

QJsonObject Peer::cmdImagePut(const QJsonObject &req)
{
    const QString path = argString(req, "path");
    detachFirst(); // the example lets go of its previous segment first
    QImage image;
    if (!image.load(path))
        throw Unsupported{QStringLiteral("cannot load an image from '%1'").arg(path)};
    int version = 0, status = 0;
    const QByteArray payload = streamOut([&](QDataStream &out) { out << image; }, -1, &version, &status);
    QJsonObject o = publish(payload, true);
    o[QStringLiteral("version")] = version;
    o[QStringLiteral("width")] = image.width();
    o[QStringLiteral("height")] = image.height();
    o[QStringLiteral("format")] = int(image.format());
    return o;
}

QJsonObject Peer::cmdImageGet(const QJsonObject &)
{
    QJsonObject o;
    QImage image;
    int status = 0;
    const bool got = fetch(o, [&](const QByteArray &data) {
        QBuffer buffer;
        buffer.setData(data);
        buffer.open(QIODevice::ReadOnly);
        QDataStream in(&buffer);
        in >> image;
        status = int(in.status());
    });
    if (got) {
        o[QStringLiteral("status")] = status;
        imagePixels(image, o);
        o[QStringLiteral("ok")] = o.value(QStringLiteral("ok")).toBool() && status == 0;
    }
    return o;
}

QJsonObject Peer::cmdVariantPut(const QJsonObject &req)
{
    const QJsonValue value = required(req, "value");
    const int version = has(req, "version") ? narrow<int>(argInt(req, "version"), "version") : -1;
    detachFirst();
    const QVariant variant = value.toVariant();
    int used = 0, status = 0;
    const QByteArray payload = streamOut([&](QDataStream &out) { out << variant; }, version, &used, &status);
    if (status != 0)
        throw Unsupported{QStringLiteral("QDataStream status %1 after writing the QVariant").arg(status)};
    QJsonObject o = publish(payload, false);
    o[QStringLiteral("version")] = used;
    o[QStringLiteral("typeName")] = typeNameOf(variant);
    return o;
}

QJsonObject Peer::cmdVariantGet(const QJsonObject &req)
{
    const int version = has(req, "version") ? narrow<int>(argInt(req, "version"), "version") : -1;
    QJsonObject o;
    QVariant variant;
    int status = 0, used = 0;
    const bool got = fetch(o, [&](const QByteArray &data) {
        QBuffer buffer;
        buffer.setData(data);
        buffer.open(QIODevice::ReadOnly);
        QDataStream in(&buffer);
        if (version >= 0)
            in.setVersion(version);
        in >> variant;
        status = int(in.status());
        used = in.version();
    });
    if (got) {
        o[QStringLiteral("value")] = QJsonValue::fromVariant(variant);
        o[QStringLiteral("typeName")] = typeNameOf(variant);
        o[QStringLiteral("status")] = status;
        o[QStringLiteral("version")] = used;
        o[QStringLiteral("ok")] = o.value(QStringLiteral("ok")).toBool() && status == 0;
    }
    return o;
}

// ----- semaphore requests ------------------------------------------------------------------

QJsonObject Peer::cmdSemOpen(const QJsonObject &req)
{
    const QString key = argString(req, "key");
    const int initial = narrow<int>(argInt(req, "initial", 0), "initial");
    const QSystemSemaphore::AccessMode mode = semMode(req);
    sem.reset();
    sem.reset(new QSystemSemaphore(key, initial, mode));
    QJsonObject o;
    o[QStringLiteral("ok")] = sem->error() == QSystemSemaphore::NoError;
    o[QStringLiteral("key")] = sem->key();
    return o;
}

QJsonObject Peer::cmdSemNative(const QJsonObject &)
{
    throw needsNativeIpcKey("sem_native");
}

QJsonObject Peer::cmdSemAcquire(const QJsonObject &)
{
    QJsonObject o;
    o[QStringLiteral("ok")] = sem->acquire();
    return o;
}

QJsonObject Peer::cmdSemRelease(const QJsonObject &req)
{
    const int n = narrow<int>(argInt(req, "n", 1), "n");
    QJsonObject o;
    o[QStringLiteral("ok")] = sem->release(n);
    return o;
}

QJsonObject Peer::cmdSemDestroy(const QJsonObject &)
{
    sem.reset();
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    return o;
}

// ----- key computations --------------------------------------------------------------------

QJsonObject Peer::cmdKeyInfo(const QJsonObject &req)
{
    const QStringList keys = argStringList(req, "keys");
    QJsonArray out;
    for (const QString &key : keys) {
        QJsonObject info;
        info[QStringLiteral("key")] = key;
        info[QStringLiteral("shmNativeKey")] = QSharedMemory(key).nativeKey();
        out.append(info);
    }
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    o[QStringLiteral("keys")] = out;
    return o;
}

QJsonObject Peer::cmdParse(const QJsonObject &)
{
    throw needsNativeIpcKey("parse");
}

QJsonObject Peer::cmdExit(const QJsonObject &)
{
    shutdown();
    exiting = true;
    QJsonObject o;
    o[QStringLiteral("ok")] = true;
    return o;
}

// Writes one protocol line; false when stdout is gone.
bool writeLine(const QJsonObject &o)
{
    const QByteArray bytes = QJsonDocument(o).toJson(QJsonDocument::Compact);
    std::cout.write(bytes.constData(), std::streamsize(bytes.size()));
    std::cout << '\n' << std::flush;
    return bool(std::cout);
}

} // namespace

int main(int argc, char **argv)
{
    // A vanished reader must not kill us before the destructors run (see below).
    std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<QCoreApplication> app;
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        app.reset(new QCoreApplication(argc, argv));
    else
        app.reset(new QGuiApplication(argc, argv));
    Peer peer;
    bool out = writeLine(peer.readyLine());
    std::string line;
    while (out && !peer.exiting) {
        if (!std::getline(std::cin, line)) { // end of input: behave as `exit`
            peer.shutdown();
            QJsonObject bye;
            bye[QStringLiteral("ok")] = true;
            writeLine(bye);
            return 0;
        }
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        out = writeLine(peer.handleLine(line));
    }
    if (!out) { // nobody reads our answers any more: clean up as `exit` does
        peer.shutdown();
        return 1;
    }
    return 0;
}
