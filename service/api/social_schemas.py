"""Request and response bodies of messages, posts, comments and the feed (see
``service.api.schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from service.api.schemas import NOT_BLANK, Id, PublicProfile

# -- messages -------------------------------------------------------------------------------

UserId = Id
MessageBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=NOT_BLANK)]


class ConversationCreate(Struct):
    user_id: UserId


class MessageCreate(Struct):
    body: MessageBody


class Message(Struct):
    id: int
    conversation_id: int
    sender_id: int
    receiver_id: int
    body: str
    is_read: bool
    created_at: datetime


class Conversation(Struct):
    id: int
    other_user: PublicProfile
    last_message: Message | None
    unread_count: int
    updated_at: datetime


# -- posts, comments and the home feed ------------------------------------------------------

PostType = Literal["text", "job"]
PostBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=NOT_BLANK)]
CommentBody = Annotated[str, Meta(min_length=1, max_length=2000, pattern=NOT_BLANK)]
JobId = Id


class PostCreate(Struct):
    body: PostBody
    post_type: PostType = "text"
    related_job_id: JobId | None = None

    def check(self) -> dict[str, str]:
        if self.post_type == "job" and self.related_job_id is None:
            return {"related_job_id": "is required for a job post"}
        return {}


class CommentCreate(Struct):
    body: CommentBody


class Post(Struct):
    id: int
    author: PublicProfile
    body: str
    post_type: PostType
    related_job_id: int | None
    likes_count: int
    comments_count: int
    liked_by_me: bool
    created_at: datetime


class Comment(Struct):
    id: int
    post_id: int
    author: PublicProfile
    body: str
    created_at: datetime
