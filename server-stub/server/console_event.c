// SPDX-License-Identifier: Apache-2.0
/*
 * Renders a stored event with every field it carries, for the console's tables and exports.
 * Walks the protobuf-c descriptors instead of naming fields, so a field added to
 * proto/corral.proto shows up in the console without a change here. Enums render as their
 * names, bytes as hex, 64-bit integers as JSON integers.
 */
#include "store_console.h"

#include <corral.pb-c.h>

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define EVENT_DEPTH_MAX 8

static json_t *message_json(const ProtobufCMessage *m, unsigned depth);

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p, unsigned depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_integer((json_int_t) * (const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *v =
		        protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		return v ? json_string(v->name) : json_integer(*(const int *)p);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		char *hex = malloc(b->len * 2 + 1);
		if (!hex)
			return NULL;
		util_hex(b->data, b->len, hex);
		json_t *j = json_string(hex);
		free(hex);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		return sub ? message_json(sub, depth + 1) : json_null();
	}
	}
	return json_null();
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static json_t *message_json(const ProtobufCMessage *m, unsigned depth)
{
	if (depth > EVENT_DEPTH_MAX)
		return json_null();
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* Only the member the oneof's case names is set. */
			uint32_t which =
			        *(const uint32_t *)((const char *)m + f->quantifier_offset);
			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)base;
			json_t *a = json_array();
			for (size_t k = 0; a && k < n; k++)
				json_array_append_new(
				        a, value_json(f, arr + k * type_size(f->type), depth));
			json_object_set_new(o, f->name, a);
			continue;
		}
		json_t *v = value_json(f, base, depth);
		if (v)
			json_object_set_new(o, f->name, v);
	}
	return o;
}

json_t *srv_console_message_json(const ProtobufCMessage *m)
{
	return m ? message_json(m, 0) : json_null();
}

json_t *srv_console_event_json(const uint8_t *buf, size_t len)
{
	Corral__Event *ev = corral__event__unpack(NULL, len, buf);
	if (!ev)
		return NULL;
	json_t *o = message_json(&ev->base, 0);
	corral__event__free_unpacked(ev, NULL);
	return o;
}
